"""Benchmarks of tianjin-updates against its floors: bare Scrapy, plain lxml, raw SQLAlchemy."""
