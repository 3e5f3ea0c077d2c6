/* Just enough of the Arduino core's API to compile neurogrip_arm.ino with avr-g++ where the
 * Arduino core is not installed (make arduino-check): it checks the sketch's C++ and the core's
 * C/C++ linkage, not the Arduino core itself. */
#include <avr/io.h>
#include <stddef.h>
#include <stdint.h>
#define OUTPUT 1
#define INPUT_PULLUP 2
#define HIGH 1
#define LOW 0
int digitalRead(uint8_t pin);
#define SERIAL_RX_BUFFER_SIZE 64
void pinMode(uint8_t pin, uint8_t mode);
unsigned long millis(void);
struct StubSerial {
    void begin(unsigned long baud);
    int available(void);
    int read(void);
    size_t write(const uint8_t *data, size_t len);
};
extern StubSerial Serial;
