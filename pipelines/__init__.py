"""Scrapy item pipelines: validate, normalise, deduplicate and store articles."""
