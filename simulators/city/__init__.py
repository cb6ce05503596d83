"""SUMO in the loop: a city whose traffic lights are emulated controllers on Modbus TCP.

Owns the demo city generator, the SUMO ⇄ controller mapping, the layout and edge config
documents and the ``CityWorld`` runner. It may use ``firmware_sim`` and ``simulators.traffic``
(and the pure timing core's constants); never the edge, the control room service or the CLI.
"""

from simulators.city.layout import ControllerEndpoint, build_layout, edge_config
from simulators.city.mapping import SignalMap, map_light, map_lights
from simulators.city.network import CityFiles, DemoCity, write_demo_city
from simulators.city.world import CityOptions, CityResult, CityWorld, CityWorldError

__all__ = [
    "CityFiles", "CityOptions", "CityResult", "CityWorld", "CityWorldError",
    "ControllerEndpoint", "DemoCity", "SignalMap", "build_layout", "edge_config", "map_light",
    "map_lights", "write_demo_city",
]
