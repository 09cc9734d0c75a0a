// Drives the stitched design (xnorflow_tb): input words from input.bin, with gaps; output
// taken with back-pressure; every stream's words and their cycles recorded (tap<i>.bin,
// tap<i>.cycles); each FIFO's largest occupancy; a deadlock (no stream moved for `timeout`
// cycles) ends the run with exit code 3. design_taps.h (generated) names the streams.
#include "common.h"
#include "design_taps.h"

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
    TB* t = new TB{context};
    std::vector<Recorder> taps;
    for (int i = 0; i < TAP_COUNT; i++) taps.push_back(Recorder{TAP_BYTES[i]});
    uint8_t word[MAX_BYTES];

    t->ap_rst_n = 0;
    t->s_axis_0_tvalid = 0;
    t->m_axis_0_tready = 0;
    for (int i = 0; i < 16; i++) {
        t->ap_clk = i & 1;
        t->eval();
    }
    t->ap_rst_n = 1;

    uint64_t sent = 0, cycle = 0, quiet = 0;
    bool stalled = false;
    while (taps[TAP_COUNT - 1].cycles.size() < out_words) {
        bool offer = sent < in_words && !(gap && percent() < gap);
        t->s_axis_0_tvalid = offer;
        if (offer) put(t->s_axis_0_tdata, &input[sent * IN_BYTES], IN_BYTES);
        t->m_axis_0_tready = !(stall && percent() < stall);
        t->ap_clk = 0;
        t->eval();
        bool moved = sample_taps(t, cycle, taps, word);
        if (t->s_axis_0_tvalid && t->s_axis_0_tready) sent++;
        t->ap_clk = 1;
        t->eval();
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
    fprintf(s, "]}\n");
    fclose(s);
    t->final();
    delete t;
    delete context;
    return stalled ? 3 : 0;
}
