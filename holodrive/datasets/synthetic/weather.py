"""Weather and time of day of a scene (seeded): sun, sky, light level, wet road.

The scene ``description`` starts with the time of day then the weather as comma-separated
tags (``"dusk, rain, wet road, two-lane road, singapore-onenorth"``); the vocabulary is fixed
(:data:`TIMES_OF_DAY`, :data:`WEATHERS`, ``"wet road"``) because captioning parses it.
"""
import math
from dataclasses import asdict, dataclass

import numpy as np

TIMES_OF_DAY = ('day', 'dawn', 'dusk', 'night')
WEATHERS = ('clear', 'cloudy', 'rain')
WET_TAG = 'wet road'
#: layout kind -> road layout tag of the description
LAYOUT_TAGS = {'straight': 'two-lane road', 'curve': 'curved road', 'intersection': 'intersection',
               't_junction': 't-junction road'}


@dataclass
class Environment:
    time_of_day: str = 'day'
    weather: str = 'clear'
    wet: bool = False
    sun_azimuth: float = 0.0          # radians, global frame
    sun_elevation: float = 0.9        # radians (negative at night: the light comes from street lamps)
    light: float = 1.0                # global illumination factor (night dimming)
    sky_low: tuple = (205.0, 218.0, 232.0)
    sky_high: tuple = (95.0, 145.0, 212.0)
    haze_m: float = 700.0             # distance haze length scale

    @property
    def sun(self):
        el = max(self.sun_elevation, 0.35)    # at night a fixed high "ambient" direction
        return np.array([math.cos(el) * math.cos(self.sun_azimuth), math.cos(el) * math.sin(self.sun_azimuth),
                         math.sin(el)], np.float32)

    def tags(self):
        out = [self.time_of_day, self.weather]
        if self.wet:
            out.append(WET_TAG)
        return out

    def to_json(self):
        d = asdict(self)
        d['sky_low'], d['sky_high'] = list(d['sky_low']), list(d['sky_high'])
        d['sun'] = [float(v) for v in self.sun]
        return d


def sample_environment(rng):
    """Seeded weather / time of day (mostly clear days, like the nuScenes logs)."""
    tod = TIMES_OF_DAY[rng.choice(4, p=[0.6, 0.12, 0.13, 0.15])]
    weather = WEATHERS[rng.choice(3, p=[0.55, 0.27, 0.18])]
    wet = weather == 'rain' or (weather == 'cloudy' and rng.random() < 0.25)
    az = float(rng.uniform(-np.pi, np.pi))
    if tod == 'day':
        el, light = float(rng.uniform(0.55, 1.15)), 1.0
        low, high = (205.0, 218.0, 232.0), (95.0, 145.0, 212.0)
    elif tod in ('dawn', 'dusk'):
        el, light = float(rng.uniform(0.08, 0.3)), 0.75
        low, high = ((235.0, 185.0, 140.0), (110.0, 120.0, 170.0)) if tod == 'dusk' else \
            ((240.0, 205.0, 175.0), (120.0, 150.0, 200.0))
    else:
        el, light = float(rng.uniform(-0.6, -0.2)), 0.32
        low, high = (40.0, 45.0, 70.0), (8.0, 10.0, 28.0)
    haze = 700.0
    if weather != 'clear':
        grey = np.array([150.0, 155.0, 162.0]) * (light if tod != 'day' else 1.0)
        mix = 0.6 if weather == 'cloudy' else 0.75
        low = tuple(float(v) for v in (1 - mix) * np.array(low) + mix * grey)
        high = tuple(float(v) for v in (1 - mix) * np.array(high) + mix * grey * 0.85)
        light *= 0.8 if weather == 'cloudy' else 0.7
        haze = 400.0 if weather == 'cloudy' else 220.0
    return Environment(tod, weather, bool(wet), az, el, float(light), low, high, haze)


def describe(env, layout_kind, location):
    """``"<time>, <weather>[, wet road], <layout>, <location>"``."""
    return ', '.join(env.tags() + [LAYOUT_TAGS.get(layout_kind, layout_kind.replace('_', '-')), location])
