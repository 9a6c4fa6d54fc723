"""NASA's Astronomy Picture of the Day: page parser, listings, JSON API client, scraper."""
