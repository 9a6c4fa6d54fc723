"""Procedural sky pictures: the embedded default data set (no network, no files).

Why procedural: the project must train and test offline, so it carries its own pictures.
They have to be hard enough to be worth a CNN (varied shapes, noise, colour casts) yet
recognisable to a person looking at a contact sheet.

Four classes (``CLASSES``):

* galaxy -- spiral (Sersic bulge, exponential disk, 2-4 logarithmic arms with clumps,
  HII knots and reddening dust lanes, optional bar), elliptical (de Vaucouleurs-like, smooth)
  or lenticular (bulge + smooth disk, edge-on dust lane); random inclination and angle;
  foreground stars and faint background galaxies.
* nebula -- emission clouds from log-normal spectral-synthesis turbulence (H-alpha red,
  OIII teal, SII; natural or "Hubble" palette), absorbing dust lanes with bright ionised
  rims, shells (planetary nebulae, supernova remnants), blue reflection nebulae; stars
  behind the dust are dimmed and reddened.
* planet -- an orthographic sphere with Minnaert limb darkening and a phase (terminator),
  surface maps for Jupiter-, Saturn-, Mars-, Moon-, Earth- and ice-giant-like worlds, rings
  with a Cassini gap that hide behind the disk, cast a shadow on it and sit in its shadow.
* star -- fields and open/globular clusters: Moffat PSF with halo and diffraction spikes,
  power-law luminosity function, black-body colours.

Anomaly kinds (``ANOMALY_KINDS``, never trained on; the anomaly detector is scored on them):
comet, trail (satellites, aircraft, star trails), lens_flare, non_sky (daytime scenes,
patterns, toy shapes) and aurora (curtains above a horizon).

Every picture is rendered at twice the requested size in linear light and area-averaged
down (anti-aliasing); then a random exposure, vignetting, shot + read noise, white
balance and display stretch (asinh or gamma) are applied, so mean colour and brightness
do not give the class away. Everything is deterministic for a given ``np.random.Generator``.

The package, one module per part of the sky: ``primitives`` (coordinates, noise fields,
profiles), ``stars`` (PSF, star fields, the star class), ``galaxies``, ``nebulae``,
``planets`` (with ``planet_surfaces``: the worlds' surface maps), ``anomalies``, ``camera``
(the finishing camera model) and ``scene`` (the entry points below, re-exported here).
"""

from astro_exp.sources.sky_render.scene import (
    ANOMALY_KINDS,
    CLASSES,
    RENDER_VERSION,
    render,
    render_multilabel,
)

__all__ = ["ANOMALY_KINDS", "CLASSES", "RENDER_VERSION", "render", "render_multilabel"]
