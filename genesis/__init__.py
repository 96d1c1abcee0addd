"""Bundled genesis files (``dev.json``) and the dev chain's CPU models, shipped as
package data so an installed node finds them without the source tree."""

from pathlib import Path

DIR = Path(__file__).resolve().parent
DEV_GENESIS = DIR / "dev.json"
DEV_MODELS = DIR / "models"
