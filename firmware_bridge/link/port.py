"""Opening the arm's serial port by URL without resetting an Arduino.

The one place that touches pyserial's port settings and the tty's flags, so the care an Arduino
needs when it is opened is written once, for the first open and every reconnect alike.

Opening without resetting an Arduino
------------------------------------
An Uno/Nano resets whenever DTR is asserted on its USB serial port (DTR drives RESET through a
100 nF capacitor): the board then sits ~0.5-2 s in its bootloader and the arm stops being driven.
:func:`open_port` guards against this as far as software can:

1. The port is created with ``do_not_open=True`` and ``dtr``/``rts`` are set to ``False`` *before*
   it is opened; pyserial applies them as part of ``open()``. On Windows and macOS this prevents
   the reset.
2. On Linux the kernel asserts DTR during the ``open()`` system call itself, before pyserial can
   clear it, so the *first* open after plugging in still resets the board. Right after opening, the
   link clears ``HUPCL`` on the port, so closing it no longer drops DTR, and later opens (including
   reconnects) do not produce the edge that resets the board. :meth:`ArmLink.open` waits up to
   ``boot_timeout`` (default 2 s) for the firmware's first reply, which covers that first reset.
   ``stty -F /dev/ttyACM0 -hupcl`` does the same from a shell.
3. Where even one reset is unacceptable, put a 10 µF capacitor between RESET and GND on the board
   (remove it to flash), as the Arduino documentation suggests.

Ptys, ``loop://`` and ``spy://`` ignore DTR; the same code path is used for all of them.
"""

from __future__ import annotations

import serial

try:
    import termios
except ImportError:  # Windows
    termios = None

from firmware_bridge.errors import Disconnected


def open_port(url: str, baudrate: int) -> serial.SerialBase:
    """Open ``url`` (anything ``serial.serial_for_url`` accepts) without asserting DTR or RTS.

    Raises
    ------
    Disconnected
        The port cannot be opened; the message names what to check.
    """
    try:
        port = serial.serial_for_url(url, do_not_open=True, baudrate=baudrate, timeout=0.01, write_timeout=0.5)
        port.dtr = False  # applied by open(): see the module docstring
        port.rts = False
        port.open()
    except (serial.SerialException, OSError, ValueError) as e:
        raise Disconnected(f"cannot open {url}: {e}. Check the device path (ls /dev/ttyACM* "
                           "/dev/ttyUSB*) and that your user is in the 'dialout' group") from e
    _clear_hupcl(port)
    return port


def _clear_hupcl(port) -> None:
    """Keep DTR asserted when the port is closed, so the next open does not reset an Arduino."""
    if termios is None:
        return  # Windows: pyserial's dtr=False before open() is enough there
    try:
        fd = port.fileno()
        attrs = termios.tcgetattr(fd)
        attrs[2] &= ~termios.HUPCL
        termios.tcsetattr(fd, termios.TCSANOW, attrs)
    except (AttributeError, OSError, ValueError, serial.SerialException, termios.error):
        pass  # not a tty (loop://, a socket): there is no DTR to keep
