"""The spiders: navigation only; extraction lives in crawler.extract."""
