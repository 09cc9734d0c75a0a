// Drives the stitched design (xnorflow_tb): input words from input.bin, with gaps; output
// taken with back-pressure; every stream's words and their cycles recorded (tap<i>.bin,
// tap<i>.cycles); each FIFO's largest occupancy; a deadlock (no stream moved for `timeout`
// cycles) ends the run with exit code 3. design_taps.h (generated) names the streams.
//
// The input is a legal AXI4-Stream master: a gap is drawn only while no word is offered; a
// word once offered keeps TVALID and its TDATA until its handshake. Every stream (tap 0, the
// input, too) is checked for the same rule; violations go to summary.json and leave the exit
// code alone.
//
// Compiled with XNORFLOW_TRACE (Verilator --trace-vcd), it also writes the waveform of every
// signal to $XNORFLOW_TRACE_FILE for the first $XNORFLOW_TRACE_CYCLES cycles.
#include "common.h"
#include "design_taps.h"
#ifdef XNORFLOW_TRACE
#include "verilated_vcd_c.h"
#endif

int main(int argc, char** argv) {
    if (argc < 8) {
        fprintf(stderr, "usage: %s input.bin out_dir out_words gap stall seed timeout\n",
                argv[0]);
        return 2;
    }
    std::vector<uint8_t> input = read_file(argv[1]);
    std::string out_dir = argv[2];
    uint64_t out_words = strtoull(argv[3], nullptr, 10);
    unsigned gap = atoi(argv[4]), stall = atoi(argv[5]);
    rng_state ^= strtoull(argv[6], nullptr, 10) * 0x9E3779B97F4A7C15ull;
    uint64_t timeout = strtoull(argv[7], nullptr, 10);
    uint64_t in_words = input.size() / IN_BYTES;

    VerilatedContext* context = new VerilatedContext;
#ifdef XNORFLOW_TRACE
    context->traceEverOn(true);
#endif
    TB* t = new TB{context};
#ifdef XNORFLOW_TRACE
    VerilatedVcdC* wave = new VerilatedVcdC;
    t->trace(wave, 99);
    const char* wave_file = getenv("XNORFLOW_TRACE_FILE");
    const char* wave_cycles = getenv("XNORFLOW_TRACE_CYCLES");
    uint64_t wave_until = wave_cycles ? strtoull(wave_cycles, nullptr, 10) : UINT64_MAX;
    wave->open(wave_file ? wave_file : "waveform.vcd");
#define DUMP(time) do { if (cycle <= wave_until) wave->dump(time); } while (0)
#else
#define DUMP(time) do { } while (0)
#endif
    Stream streams[TAP_COUNT];
    bind_taps(t, streams);
    std::vector<Recorder> taps;
    for (int i = 0; i < TAP_COUNT; i++) taps.push_back(Recorder{TAP_BYTES[i]});
    AxisChecker axis(std::vector<int>(TAP_BYTES, TAP_BYTES + TAP_COUNT));

    t->ap_rst_n = 0;
    t->s_axis_0_tvalid = 0;
    t->m_axis_0_tready = 0;
    for (int i = 0; i < 16; i++) {
        t->ap_clk = i & 1;
        t->eval();
    }
    t->ap_rst_n = 1;

    uint64_t sent = 0, cycle = 0, quiet = 0;   // cycle: counted from the end of reset
    bool stalled = false, offered = false;
    const Recorder& output = taps[TAP_COUNT - 1];
    while (output.cycles.size() < out_words) {
        if (!offered && sent < in_words && !(gap && percent() < gap)) {
            offered = true;   // held until its handshake
            put(t->s_axis_0_tdata, &input[sent * IN_BYTES], IN_BYTES);
        }
        t->s_axis_0_tvalid = offered;
        t->m_axis_0_tready = !(stall && percent() < stall);
        t->ap_clk = 0;
        t->eval();
        DUMP(2 * cycle);
        // the signals the rising edge sees: handshakes, recorded; the AXI4-Stream rule
        bool moved = false;
        for (int i = 0; i < TAP_COUNT; i++) {
            const Stream& s = streams[i];
            bool valid = *s.tvalid, ready = *s.tready;
            axis.check(i, valid, ready, s.tdata, s.bytes, cycle);
            if (valid && ready) {
                taps[i].take(cycle, s.tdata);
                moved = true;
            }
        }
        if (offered && t->s_axis_0_tready) {
            sent++;
            offered = false;
        }
        t->ap_clk = 1;
        t->eval();
        DUMP(2 * cycle + 1);
        cycle++;
        quiet = moved ? 0 : quiet + 1;
        if (quiet > timeout) {
            stalled = true;
            break;
        }
    }
    for (int i = 0; i < TAP_COUNT; i++) taps[i].save(out_dir + "/tap" + std::to_string(i));
    unsigned maxcount[FIFO_COUNT + 1];
    read_maxcounts(t, maxcount);
    FILE* s = fopen((out_dir + "/summary.json").c_str(), "w");
    fprintf(s, "{\"cycles\": %llu, \"stalled\": %s, \"sent\": %llu, \"words\": [",
            (unsigned long long)cycle, stalled ? "true" : "false", (unsigned long long)sent);
    for (int i = 0; i < TAP_COUNT; i++)
        fprintf(s, "%s%zu", i ? ", " : "", taps[i].cycles.size());
    fprintf(s, "], \"maxcount\": [");
    for (int j = 0; j < FIFO_COUNT; j++) fprintf(s, "%s%u", j ? ", " : "", maxcount[j]);
    fprintf(s, "], ");
    axis.write_json(s, "tap");
    fprintf(s, "}\n");
    fclose(s);
    t->final();
#ifdef XNORFLOW_TRACE
    wave->close();
    delete wave;
#endif
    delete t;
    delete context;
    return stalled ? 3 : 0;
}
