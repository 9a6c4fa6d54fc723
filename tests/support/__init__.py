"""Test helpers: the checkout's APOD sites for the stand-in (the server itself is the
package's, astro_exp.apod.standin), and the one place the tests find ``../shared/data``
(real APOD pages, pictures and labels)."""

from pathlib import Path

# beside the checkout; tests that read it skip when it is absent
SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
