"""The host end of the arm link: a serial port opened by URL, acknowledged requests, heartbeats,
reconnection, and the link's picture of the firmware behind it.

``from firmware_bridge.link import ArmLink`` is all an owner needs; the modules, from the bottom up:

- ``settings.py``: the link's settings, checked once and shared by its parts;
- ``faults.py``: what the link reports (``LinkFault``, ``FaultKind``, ``LinkStats``) and how;
- ``port.py``: opening the port by URL without resetting an Arduino (DTR);
- ``exchange.py``: requests and their replies: retransmission, deadlines, matching by seq;
- ``transport.py``: the port's threads (reading, heartbeats), reconnection, frames routed by type;
- ``arm_state.py``: the firmware-state mirror: resets, watchdog trips, e-stop, what to restore;
- ``session.py``: the handshake, one state-changing request at a time, resync after a reset;
- ``stream.py``: ``SampleStream``, the arm's ADC inputs as the owner reads them (``SampleBlock``s);
- ``stream_control.py``: the stream's runs in wire order, started again after a reset or reconnect;
- ``arm_link.py``: ``ArmLink``, the public face composing them (``ArmLink.open_stream``).
"""

from firmware_bridge.link.arm_link import ArmLink
from firmware_bridge.link.exchange import EXPECTED_REPLY, READ_TYPES, REPLY_TYPES
from firmware_bridge.link.faults import FaultKind, LinkFault, LinkStats
from firmware_bridge.link.stream import SampleBlock, SampleStream, StreamStats

__all__ = ["EXPECTED_REPLY", "READ_TYPES", "REPLY_TYPES", "ArmLink", "FaultKind", "LinkFault", "LinkStats",
           "SampleBlock", "SampleStream", "StreamStats"]
