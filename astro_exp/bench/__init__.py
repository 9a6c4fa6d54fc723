"""Benchmarks: each figure measured against a baseline of the same run.

Why a stage of its own: the benchmarks time the training pipelines, predict, the anomaly
detectors, the web app and the scraper, so they sit downstream of all of them; the commands
(``astro-exp bench``, ``bench-web``, ``bench-scrape``) only parse their config and call in.

- :mod:`~astro_exp.bench.figures`: ``astro-exp bench``'s figures put together;
- :mod:`~astro_exp.bench.pipelines`: training throughput (model only, end to end, naive);
- :mod:`~astro_exp.bench.real_size`: the tensor cache's build from real-size JPEGs;
- :mod:`~astro_exp.bench.latency`: predict's latency and throughput, the detectors' times;
- :mod:`~astro_exp.bench.web_gallery` + :mod:`~astro_exp.bench.web_load`: the web app;
- :mod:`~astro_exp.bench.scraper`: page parsing and a first sync against a re-sync over the
  local APOD stand-in (:mod:`astro_exp.apod.standin`).
"""
