"""The control room's traffic service: city layout, live state, the adaptive loop, commands,
alarms and operator overrides. It talks to edges only through `edge.contract` messages and
runs the timing core (`controlroom.timing`) for every intersection at once."""
