"""The settings of one link, checked once and shared by all its parts.

:class:`~firmware_bridge.link.arm_link.ArmLink` takes them as keyword arguments (defaults from
``firmware_bridge/config.py``) and exposes each as an attribute kept here; the transport, the
firmware-state mirror and the session read them here when they use them, so the parts never hold
copies that could disagree.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class LinkSettings:
    """What :class:`~firmware_bridge.link.arm_link.ArmLink`'s parameters of the same names say."""

    url: str
    baudrate: int
    ack_timeout: float
    retries: int
    heartbeat_period: float | None
    command_max_age: float
    boot_timeout: float
    reconnect: bool
    backoff_initial: float
    backoff_max: float
    auto_resync: bool
    hold_after_reset: bool
    on_fault: Callable | None  # called with each LinkFault (faults.FaultReporter)

    def __post_init__(self):
        if not isinstance(self.url, str) or not self.url:
            raise TypeError(f"url must be a non-empty str such as '/dev/ttyACM0' or 'loop://', got {self.url!r}")
        for name in ("ack_timeout", "command_max_age", "boot_timeout", "backoff_initial", "backoff_max"):
            v = getattr(self, name)
            if not v > 0:
                raise ValueError(f"{name} must be > 0 seconds, got {v!r}")
        if not isinstance(self.retries, int) or self.retries < 0:
            raise ValueError(f"retries must be an int >= 0, got {self.retries!r}")
        if self.heartbeat_period is not None and not self.heartbeat_period > 0:
            raise ValueError(f"heartbeat_period must be > 0 seconds or None, got {self.heartbeat_period!r}")
        if self.on_fault is not None and not callable(self.on_fault):
            raise TypeError(f"on_fault must be callable (it receives a LinkFault), got {self.on_fault!r}")


class Setting:
    """An attribute of :class:`~firmware_bridge.link.arm_link.ArmLink` kept in its :class:`LinkSettings`
    (``link._settings``), where every part reads it."""

    def __set_name__(self, owner, name: str):
        self.name = name

    def __get__(self, link, owner=None):
        return self if link is None else getattr(link._settings, self.name)

    def __set__(self, link, value):
        setattr(link._settings, self.name, value)


class SettingAttributes:
    """Each setting of :class:`LinkSettings` as an attribute of its owner (``ArmLink``), kept in the
    owner's ``_settings`` so that the parts reading it there never hold a copy that could disagree."""

    url = Setting()
    baudrate = Setting()
    ack_timeout = Setting()
    retries = Setting()
    heartbeat_period = Setting()
    command_max_age = Setting()
    boot_timeout = Setting()
    reconnect = Setting()
    backoff_initial = Setting()
    backoff_max = Setting()
    auto_resync = Setting()
    hold_after_reset = Setting()
    on_fault = Setting()
