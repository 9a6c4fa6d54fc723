"""The weak labeller: traps, title over explanation, multilabel output, versioning, config errors."""

from __future__ import annotations

import copy

import pytest

from astro_exp.data.labels import Labeller, build_labeller, load_label_config
from astro_exp.errors import ConfigError


@pytest.fixture(scope="module")
def apod4_cfg() -> dict:
    from omegaconf import OmegaConf

    return OmegaConf.to_container(load_label_config("apod4"), resolve=True)


@pytest.fixture(scope="module")
def apod4(apod4_cfg: dict) -> Labeller:
    return Labeller(apod4_cfg)


@pytest.fixture(scope="module")
def extended() -> Labeller:
    return Labeller(load_label_config("apod_extended"))


@pytest.mark.parametrize(
    ("title", "explanation", "expected"),
    [
        # plain subjects
        (
            "NGC 1232: A Grand Design Spiral Galaxy",
            "Grand spiral galaxy NGC 1232 shows its arms.",
            "galaxy",
        ),
        ("The Rosette Nebula", "This emission nebula glows in hydrogen light.", "nebula"),
        ("Jupiter's Great Red Spot", "A storm larger than Earth swirls on Jupiter.", "planet"),
        ("Open Star Cluster M35", "Hundreds of stars make up this open cluster.", "star"),
        ("Messier 2", "", "star"),  # a globular cluster, named the long way
        ("M31", "", "galaxy"),
        # traps
        (
            "NGC 6543: The Cat's Eye Planetary Nebula",
            "A dying star shed this planetary nebula.",
            "nebula",
        ),
        ("Planetary Nebula Abell 7", "", "nebula"),
        (
            "Milky Way over Monument Valley",
            "The Milky Way arches over buttes in the desert foreground.",
            "other",
        ),
        (
            "A Milky Way Dawn",
            "The center of the Milky Way stands above the observatory domes and the desert horizon.",
            "other",
        ),
        (
            "The Milky Way's Center",
            "Star clouds and dust lanes crowd the center of our galaxy.",
            "star",
        ),
        (
            "Star Trails over the Observatory",
            "Stars trace arcs around the celestial pole in this long exposure.",
            "other",
        ),
        ("Framed by Trees: A Window to the Galaxy", "", "other"),
        (
            "Planets over the Pyramids",
            "Venus, Jupiter and Mars line up in a conjunction above the horizon.",
            "other",
        ),
        (
            "Lightning on Jupiter",
            "Juno's camera caught flashes in the clouds of Jupiter.",
            "planet",
        ),
        ("Far Beyond the Local Group: NGC 3621", "", "galaxy"),
        # "galaxy" in passing sentences does not outvote the title's subject
        (
            "The Tarantula Nebula",
            "The Tarantula Nebula is a star-forming region. It lies in a satellite galaxy of our galaxy. "
            "That galaxy is the Large Magellanic Cloud, a small galaxy. Other galaxies are farther away.",
            "nebula",
        ),
        # the Moon, the Sun, aurora, comets, spacecraft are "other" in apod4
        ("A Thin Crescent Moon", "The young Moon sets after the Sun.", "other"),
        ("Solar Prominences", "Prominences dance along the edge of the Sun.", "other"),
        ("Aurora over Norway", "Green aurora ripple over snowy mountains.", "other"),
        ("Comet NEOWISE", "The comet's dust tail spans the sky.", "other"),
        (
            "Rocket Launch from Cape Canaveral",
            "A Falcon 9 rocket carries astronauts toward the space station.",
            "other",
        ),
        ("Earthrise", "Astronauts saw planet Earth rise over the lunar horizon.", "other"),
        # Mars missions show Mars; Ceres is a dwarf planet; our Moon is singular
        ("Tracks of the Perseverance Rover", "", "planet"),
        ("Craters on Asteroid Ceres", "", "planet"),
        ("Saturn and Seven Moons", "", "planet"),
        # planets as dots in the sky: beside the Moon, as the morning star, in a little-planet panorama
        ("Jupiter and the Crescent Moon", "", "other"),
        ("Venus as the Morning Star", "", "other"),
        ("A Little Planet at Dawn", "", "other"),
        ("Laser Guide Stars over the Telescopes", "", "other"),
        # nebulae named as such even beside a galaxy's name or a comet's word
        ("N44: A Superbubble in the Large Magellanic Cloud", "", "nebula"),
        ("A Cometary Globule in Puppis", "", "nebula"),
        ("Centaurus As Jets", "", "galaxy"),
        # nothing recognisable: other
        ("Hypatia of Alexandria", "A mathematician and philosopher of antiquity.", "other"),
        ("", "", "other"),
    ],
)
def test_apod4_primary(apod4: Labeller, title: str, explanation: str, expected: str) -> None:
    res = apod4.label(title, explanation, explain=True)
    assert res.primary == expected, (res.scores, res.hits)


@pytest.mark.parametrize(
    ("title", "explanation", "expected"),
    [
        ("A Thin Crescent Moon", "The young Moon sets after twilight.", "moon"),
        ("Total Solar Eclipse", "The solar corona surrounds the eclipsed Sun.", "sun"),
        ("Aurora over Norway", "Green aurora ripple in the night.", "aurora_atmosphere"),
        ("Comet NEOWISE", "The comet's dust tail spans the sky.", "comet"),
        (
            "The Space Station Crosses the Sky",
            "The ISS and its astronauts orbit planet Earth.",
            "spacecraft_earth",
        ),
        (
            "Globular Cluster M13",
            "Hundreds of thousands of stars in a globular cluster.",
            "star_cluster",
        ),
        ("Saturn's Rings from Cassini", "The rings of Saturn cast shadows.", "planet"),
        (
            "Milky Way over Monument Valley",
            "The Milky Way arches over the desert foreground.",
            "other",
        ),
    ],
)
def test_extended_primary(extended: Labeller, title: str, explanation: str, expected: str) -> None:
    assert extended.label(title, explanation).primary == expected


def test_planet_earth_and_solar_system_are_neutral(apod4: Labeller) -> None:
    res = apod4.label(
        "",
        "Light from this nebula reached planet Earth long after our Solar System formed.",
        explain=True,
    )
    assert "planet" not in res.scores and "other" not in res.scores
    assert {h[1] for h in res.hits} >= {"planet_earth", "solar_system"}


def test_multilabel_all_and_scores(apod4: Labeller) -> None:
    res = apod4.label("Comet and the Pleiades", "The comet passed the Pleiades star cluster.")
    assert res.primary == res.all[0]
    assert set(res.all) == {"other", "star"}
    assert list(res.scores) == sorted(res.scores, key=lambda k: -res.scores[k])
    out = res.to_json()
    assert set(out) == {"primary", "all", "scores", "version"} and out["version"] == apod4.version


def test_title_outweighs_explanation(apod4: Labeller) -> None:
    text = "A galaxy. Galaxies. More galaxies."
    assert apod4.label("Saturn", text).primary == "planet"
    assert apod4.label("", "Saturn. " + text).primary == "galaxy"


def test_version_changes_with_rules_and_name(
    apod4_cfg: dict, apod4: Labeller, extended: Labeller
) -> None:
    assert apod4.version.startswith("apod4-") and extended.version.startswith("apod_extended-")
    assert Labeller(copy.deepcopy(apod4_cfg)).version == apod4.version  # deterministic
    changed = copy.deepcopy(apod4_cfg)
    changed["concepts"]["galaxy_word"]["weight"] = 2.5
    assert Labeller(changed).version != apod4.version
    renamed = {**copy.deepcopy(apod4_cfg), "description": "only words differ"}
    assert Labeller(renamed).version == apod4.version


def test_config_errors_are_one_line(apod4_cfg: dict) -> None:
    with pytest.raises(ConfigError, match="labels: apod4"):
        build_labeller(None)
    bad = copy.deepcopy(apod4_cfg)
    bad["concepts"]["x"] = {"topic": "galaxy", "pattern": "(unclosed"}
    with pytest.raises(ConfigError, match="concepts.x: bad pattern"):
        Labeller(bad)
    bad = copy.deepcopy(apod4_cfg)
    bad["concepts"]["x"] = {"topic": "unicorn", "pattern": "x"}
    with pytest.raises(ConfigError, match="topic_map"):
        Labeller(bad)
    with pytest.raises(ConfigError, match="no label config 'nope'"):
        load_label_config("nope")


def test_case_insensitive_matching_keeps_escapes(apod4: Labeller) -> None:
    # \S, \W inside a pattern must survive the lowering used for case-insensitive matching
    cfg = {
        "name": "t",
        "classes": ["a", "b"],
        "min_score": 1,
        "concepts": {
            "a": {"topic": "a", "pattern": r"FOO\S+"},
            "b": {"topic": "b", "pattern": r"BAR\W"},
        },
    }
    lab = Labeller(cfg)
    assert lab.label("Foo-bar", "").primary == "a"
    assert lab.label("bar!", "").primary == "b"
    assert lab.label("foo ", "").primary == "other"
