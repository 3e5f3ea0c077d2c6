/* Wire protocol constants (firmware_bridge/PROTOCOL.md). */
#ifndef NG_PROTOCOL_H
#define NG_PROTOCOL_H

#define NG_PROTOCOL_VERSION 1u
#define NG_HEADER_SIZE 3u
#define NG_CRC_SIZE 2u
#define NG_MAX_PAYLOAD 32u
#define NG_MAX_RAW (NG_HEADER_SIZE + NG_MAX_PAYLOAD + NG_CRC_SIZE)
#define NG_MAX_ENCODED (NG_MAX_RAW + 1u)
#define NG_CLEAR_MAGIC 0xC1EAu

enum ng_msg_type {
    NG_MSG_HELLO = 0x01, NG_MSG_HEARTBEAT = 0x02, NG_MSG_ARM_CMD = 0x03, NG_MSG_ESTOP = 0x04,
    NG_MSG_CLEAR = 0x05, NG_MSG_STATUS_REQ = 0x06, NG_MSG_SET_LIMITS = 0x07, NG_MSG_SET_CONFIG = 0x08,
    NG_MSG_STREAM_START = 0x09, NG_MSG_STREAM_STOP = 0x0A,
    NG_MSG_ACK = 0x80, NG_MSG_NACK = 0x81, NG_MSG_HELLO_REPLY = 0x82, NG_MSG_STATUS = 0x83,
    NG_MSG_SAMPLES = 0x84
};

#define NG_LEN_HELLO 2u
#define NG_LEN_HEARTBEAT 0u
#define NG_LEN_ARM_CMD 6u
#define NG_LEN_ESTOP 0u
#define NG_LEN_CLEAR 4u
#define NG_LEN_STATUS_REQ 0u
#define NG_LEN_SET_LIMITS 10u
#define NG_LEN_SET_CONFIG 4u
#define NG_LEN_STREAM_START 4u
#define NG_LEN_STREAM_STOP 0u
#define NG_LEN_ACK 1u
#define NG_LEN_NACK 2u
#define NG_LEN_HELLO_REPLY 8u
#define NG_LEN_STATUS 28u
/* SAMPLES is the one message whose length varies: NG_SAMPLES_HEADER bytes, then n_scans x n_channels
 * 10-bit values packed (PROTOCOL.md section 5); this is its largest size. */
#define NG_LEN_SAMPLES 32u
#define NG_SAMPLES_HEADER 7u

enum ng_action {
    NG_ACT_GRASP = 1, NG_ACT_RELEASE = 2, NG_ACT_LIFT = 3, NG_ACT_LOWER = 4,
    NG_ACT_OPEN = 5, NG_ACT_HOLD = 6, NG_ACT_REST = 7
};

enum ng_reason {
    NG_R_CRC = 1, NG_R_FRAMING = 2, NG_R_UNKNOWN_TYPE = 3, NG_R_BAD_LENGTH = 4, NG_R_BAD_ARG = 5,
    NG_R_ESTOPPED = 6, NG_R_WATCHDOG = 7, NG_R_VERSION = 8, NG_R_NO_HELLO = 9, NG_R_BUDGET = 10
};

#define NG_FAULT_ESTOP 0x01u
#define NG_FAULT_WATCHDOG 0x02u
#define NG_FAULT_CLAMPED 0x04u
#define NG_FAULT_NO_HELLO 0x08u
#define NG_FAULT_RX_OVERFLOW 0x10u
/* The arm's own e-stop switch is pressed (a latching switch: it holds until turned to release).
 * Not clearable by CLEAR: only releasing the switch clears it. */
#define NG_FAULT_ESTOP_INPUT 0x20u
#define NG_FAULT_CLEARABLE (NG_FAULT_ESTOP | NG_FAULT_WATCHDOG | NG_FAULT_RX_OVERFLOW)
#define NG_FAULT_STOPPED (NG_FAULT_ESTOP | NG_FAULT_ESTOP_INPUT)

#endif
