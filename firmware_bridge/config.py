"""The numbers that define the link's behaviour on the Pi side (docs/design.md § 3, § 4).

The firmware's own numbers (watchdog timeout, joint limits, slew rate, the UART's baud rate) live in
its C configuration (``firmware/core/ng_config.h``) and are enforced there: the Pi is not trusted.
"""

BAUDRATE = 500_000             # the firmware's UART, NG_LINK_BAUD (PROTOCOL.md § 5.4 says why 500 000)
ACK_TIMEOUT_S = 0.05           # one try; a 500 000-baud round trip of a command is ~1 ms
RETRIES = 3                    # re-sends of an unacknowledged frame before AckTimeout
HEARTBEAT_PERIOD_S = 0.05      # well inside the firmware watchdog's timeout
# A command not sent within this time of the window it was decided on is dropped, never sent
# late: 50 ms is the design's decision interval, so a late command would overlap the next one.
DEFAULT_COMMAND_MAX_AGE_S = 0.05
BOOT_TIMEOUT_S = 2.0           # HELLO repeated this long after open (a board that resets on open)
BACKOFF_INITIAL_S = 0.05       # reconnect back-off, doubling up to BACKOFF_MAX_S
BACKOFF_MAX_S = 2.0
