"""neurogrip firmware bridge: the serial link to the arm's microcontroller and its firmware."""
