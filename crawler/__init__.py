"""Scrapy project for the Tianjin Updates news section: spiders, extraction, replica site, CLI."""
