// The serial line of an ECP5 board's UART link (xnorflow_uart_tb: hdl/board/xnorflow_uart.sv
// and the accelerator), simulated for the host driver (xnorflow.hw.rtl.uart_host.SimulatedPort)
// through stdin and stdout, so that the driver runs the same code as against the board.
//
// Commands on stdin, each answered on stdout:
//   'W' u32 n, n bytes   the bytes go into the line's queue (8N1, CLKS_PER_BIT cycles a bit);
//                        answer: nothing
//   'B'                  a break: the line low for two characters, then idle for one
//   'R' u32 n, u32 idle  simulate until n bytes came back from the board, or until the queue is
//                        empty and nothing came back for `idle` bit times;
//                        answer: u32 k, k bytes
//   'S'                  answer: u32 overruns (bytes the link had to drop), u64 cycles
// End of input ends the program. uart_link.h (generated) names the test bench and CLKS_PER_BIT.
#include "verilated.h"
#include "uart_link.h"
#include <cstdint>
#include <cstdio>
#include <deque>
#include <vector>

static bool read_exact(void* buffer, size_t size) {
    return fread(buffer, 1, size, stdin) == size;
}

int main(int argc, char** argv) {
    VerilatedContext* context = new VerilatedContext;
    context->commandArgs(argc, argv);
    TB* t = new TB{context};
    uint64_t cycle = 0;
    std::deque<uint8_t> line;         // the levels still to drive, one per bit time
    int held = 0;                     // cycles the current level has been driven
    // the board's transmitter, decoded: 0 idle, else the half-bit countdown and bit index
    int rx_count = 0, rx_bit = -1;
    uint8_t rx_byte = 0;
    std::vector<uint8_t> received;

    auto tick = [&]() {
        if (!line.empty()) {
            t->rxd = line.front();
            if (++held == CLKS_PER_BIT) {
                line.pop_front();
                held = 0;
            }
        } else {
            t->rxd = 1;
        }
        t->clk = 1;
        t->eval();
        t->clk = 0;
        t->eval();
        cycle++;
        if (rx_bit < 0) {             // idle: a falling edge starts a character
            if (!t->txd) {
                rx_bit = 0;
                rx_count = CLKS_PER_BIT / 2;
            }
        } else if (--rx_count == 0) { // the middle of a bit
            rx_count = CLKS_PER_BIT;
            if (rx_bit == 0 && t->txd) rx_bit = -1;       // not a start bit
            else if (rx_bit >= 1 && rx_bit <= 8) rx_byte = (rx_byte >> 1) | (t->txd ? 0x80 : 0);
            if (rx_bit == 9) {
                if (t->txd) received.push_back(rx_byte);  // a framing error is dropped
                rx_bit = -1;
            } else if (rx_bit >= 0) {
                rx_bit++;
            }
        }
    };

    t->rst = 1;
    t->rxd = 1;
    for (int i = 0; i < 32; i++) tick();
    t->rst = 0;
    for (int i = 0; i < 32; i++) tick();

    for (int command; (command = getchar()) != EOF;) {
        if (command == 'W') {
            uint32_t n;
            if (!read_exact(&n, 4)) return 2;
            std::vector<uint8_t> bytes(n);
            if (!read_exact(bytes.data(), n)) return 2;
            for (uint8_t b : bytes) {
                line.push_back(0);
                for (int i = 0; i < 8; i++) line.push_back((b >> i) & 1);
                line.push_back(1);
            }
        } else if (command == 'B') {
            for (int i = 0; i < 20; i++) line.push_back(0);
            for (int i = 0; i < 10; i++) line.push_back(1);
        } else if (command == 'R') {
            uint32_t n, idle;
            if (!read_exact(&n, 4) || !read_exact(&idle, 4)) return 2;
            uint64_t quiet = 0, limit = (uint64_t)idle * CLKS_PER_BIT;
            while (received.size() < n && quiet < limit) {
                size_t before = received.size();
                tick();
                quiet = (line.empty() && received.size() == before && rx_bit < 0) ? quiet + 1 : 0;
            }
            uint32_t k = received.size() < n ? received.size() : n;
            fwrite(&k, 4, 1, stdout);
            fwrite(received.data(), 1, k, stdout);
            received.erase(received.begin(), received.begin() + k);
            fflush(stdout);
        } else if (command == 'S') {
            uint32_t overruns = t->overruns;
            fwrite(&overruns, 4, 1, stdout);
            fwrite(&cycle, 8, 1, stdout);
            fflush(stdout);
        } else {
            fprintf(stderr, "uart_link: unknown command %d\n", command);
            return 2;
        }
    }
    t->final();
    delete t;
    return 0;
}
