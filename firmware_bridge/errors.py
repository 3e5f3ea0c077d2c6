"""Exception hierarchy of :mod:`firmware_bridge`.

Every error the link raises derives from :class:`LinkError`, so the edge runtime can catch one
type and fall back to its safe behaviour (stop sending, tell the user).  Messages name the fix.
"""

from __future__ import annotations


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


class Nacked(LinkError):
    """The firmware refused a request with a NACK.

    Parameters
    ----------
    msg_type : int
        The refused message type.
    reason : int
        The firmware's reason code (see ``firmware_bridge.protocol.Reason``).
    """

    def __init__(self, msg_type: int, reason: int, hint: str = ""):
        from firmware_bridge.protocol import MsgType, Reason, reason_hint

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
