"""Exception hierarchy of :mod:`firmware_bridge`.

Every error the link raises derives from :class:`LinkError`, so the edge runtime can catch one
type and fall back to its safe behaviour (stop sending, tell the user).  Messages name the fix.
"""

from __future__ import annotations

from firmware_bridge.wire import MsgType, Reason, reason_hint


class LinkError(Exception):
    """Base class of every error raised by :mod:`firmware_bridge`."""


class FrameError(LinkError, ValueError):
    """A received frame is malformed: bad COBS, bad length or bad CRC.

    The parser counts these and drops the frame; it is raised only by :func:`decode_frame` when
    the caller asks to decode one frame on its own.
    """


class ProtocolError(LinkError):
    """The other end answered with something the protocol does not allow here.

    Examples: a wrong protocol version in ``HELLO_REPLY`` or our own frames echoed back
    (a ``loop://`` URL or a wiring loop).
    """


class VersionMismatch(ProtocolError):
    """Host and firmware speak different protocol versions (the HELLO exchange).

    ``host_version`` is this host's; ``firmware_version`` the firmware's, read from the first byte
    of its HELLO_REPLY, or ``None`` when the firmware refused our HELLO with ``NACK VERSION``.
    """

    def __init__(self, host_version: int, firmware_version: int | None):
        self.host_version = host_version
        self.firmware_version = firmware_version
        fix = ("flash the firmware that matches this neurogrip (firmware_bridge/README.md, "
               "'Hardware: wiring and flashing a real Uno')")
        if firmware_version is None:
            text = (f"the firmware refused HELLO for protocol version {host_version} (NACK VERSION): it speaks "
                    f"another protocol version; {fix}")
        else:
            text = (f"the firmware speaks protocol version {firmware_version}, this host protocol version "
                    f"{host_version}: {fix}")
        super().__init__(text)


class Nacked(LinkError):
    """The firmware refused a request with a NACK.

    Parameters
    ----------
    msg_type : int
        The refused message type.
    reason : int
        The firmware's reason code (see ``firmware_bridge.wire.Reason``).
    """

    def __init__(self, msg_type: int, reason: int, hint: str = ""):
        self.msg_type = msg_type
        self.reason = reason
        try:
            tname = MsgType(msg_type).name
        except ValueError:
            tname = f"0x{msg_type:02x}"
        try:
            rname = Reason(reason).name
        except ValueError:
            rname = f"0x{reason:02x}"
        super().__init__(f"firmware refused {tname}: {rname}. {hint or reason_hint(reason)}".strip())


class HeldAfterReset(Nacked):
    """An ARM_CMD refused by the link itself, not sent: the arm's microcontroller reset.

    A reset takes the arm to its safe pose and forgets the firmware's latches, the way a watchdog
    trip does; the link holds motion commands until the owner calls ``clear(Fault.WATCHDOG)``, the
    same decision as after a watchdog trip.  ``reason`` is therefore ``Reason.WATCHDOG``, so code
    that handles a watchdog NACK handles this too.
    """

    def __init__(self, why: str):
        self.msg_type = MsgType.ARM_CMD
        self.reason = Reason.WATCHDOG
        LinkError.__init__(self, f"ARM_CMD held by the link, not sent: {why}. Call clear(Fault.WATCHDOG) "
                                 "once the host is ready to command the arm again")


class LinkFailed(LinkError):
    """A background thread of the link died; the link refuses every request until reopened.

    ``cause`` is the exception that ended the thread.  Heartbeats have stopped, so the firmware's
    watchdog takes the arm to its safe pose; ``close()`` then ``open()`` the link (or exit).
    """

    def __init__(self, message: str, cause: BaseException | None = None):
        self.cause = cause
        super().__init__(message)


class AckTimeout(LinkError, TimeoutError):
    """No ACK/NACK/reply arrived after the bounded number of retries."""


class DeadlineExpired(LinkError, TimeoutError):
    """A command's deadline passed before it could be (re)sent; it was not sent late.

    ``transmitted`` tells whether an earlier copy did go out (then the firmware may have executed it:
    ask for STATUS to find out).
    """

    def __init__(self, message: str, transmitted: bool):
        self.transmitted = transmitted
        super().__init__(message)


class Disconnected(LinkError, ConnectionError):
    """The serial port is gone (unplugged) or not open; the link is reconnecting or closed."""
