// Drives every layer of xnorflow_layers_tb on its own: layer i reads l<i>_in.bin at full
// rate, its output always ready (or, with the optional trailing `stall` percent and `seed`,
// with back-pressure drawn per layer and cycle); its output words and their cycles go to
// l<i>_out.bin and l<i>_out.cycles. Every layer's output is checked for AXI4-Stream's rule (a
// word offered and not taken stays offered, unchanged): violations go to summary.json and
// leave the exit code alone (with the output always ready there is nothing to violate).
// layers_taps.h (generated) names the ports.
#include "common.h"

// one layer's ports: its input, which the harness drives, and its output stream
struct Layer {
    CData* in_tvalid;
    const CData* in_tready;
    uint8_t* in_tdata;
    int in_bytes;
    size_t in_size;   // bytes of the Verilator signal (cleared once; a word fills in_bytes)
    CData* out_tready;
    Stream out;
};

#include "layers_taps.h"

int main(int argc, char** argv) {
    if (argc < 3 + LAYER_COUNT) {
        fprintf(stderr, "usage: %s dir timeout words_0 ... words_%d [stall [seed]]\n", argv[0],
                LAYER_COUNT - 1);
        return 2;
    }
    std::string dir = argv[1];
    uint64_t timeout = strtoull(argv[2], nullptr, 10);
    std::vector<uint64_t> expected, in_words;
    std::vector<std::vector<uint8_t>> inputs;
    for (int i = 0; i < LAYER_COUNT; i++) {
        expected.push_back(strtoull(argv[3 + i], nullptr, 10));
        inputs.push_back(read_file(dir + "/l" + std::to_string(i) + "_in.bin"));
    }
    unsigned stall = argc > 3 + LAYER_COUNT ? atoi(argv[3 + LAYER_COUNT]) : 0;
    if (argc > 4 + LAYER_COUNT)
        rng_state ^= strtoull(argv[4 + LAYER_COUNT], nullptr, 10) * 0x9E3779B97F4A7C15ull;

    VerilatedContext* context = new VerilatedContext;
    TB* t = new TB{context};
    Layer layers[LAYER_COUNT];
    bind_layers(t, layers);
    std::vector<Recorder> outs;
    for (int i = 0; i < LAYER_COUNT; i++) {
        outs.push_back(Recorder{layers[i].out.bytes});
        in_words.push_back(inputs[i].size() / layers[i].in_bytes);
        memset(layers[i].in_tdata, 0, layers[i].in_size);
    }
    std::vector<uint64_t> next(LAYER_COUNT, 0);
    AxisChecker axis(std::vector<int>(OUT_BYTES, OUT_BYTES + LAYER_COUNT));

    t->ap_rst_n = 0;
    for (int i = 0; i < 16; i++) {
        t->ap_clk = i & 1;
        t->eval();
    }
    t->ap_rst_n = 1;
    uint64_t cycle = 0, quiet = 0;
    bool stalled = false;
    while (true) {
        bool done = true;
        for (int i = 0; i < LAYER_COUNT; i++) done = done && outs[i].cycles.size() >= expected[i];
        if (done) break;
        for (int i = 0; i < LAYER_COUNT; i++) {
            const Layer& l = layers[i];
            bool offer = next[i] < in_words[i];   // held until its handshake
            *l.in_tvalid = offer;
            if (offer) memcpy(l.in_tdata, &inputs[i][next[i] * l.in_bytes], l.in_bytes);
            *l.out_tready = !(stall && percent() < stall);
        }
        t->ap_clk = 0;
        t->eval();
        bool moved = false;
        for (int i = 0; i < LAYER_COUNT; i++) {
            const Layer& l = layers[i];
            bool valid = *l.out.tvalid, ready = *l.out.tready;
            axis.check(i, valid, ready, l.out.tdata, l.out.bytes, cycle);
            if (valid && ready) {
                outs[i].take(cycle, l.out.tdata);
                moved = true;
            }
            if (*l.in_tvalid && *l.in_tready) {
                next[i]++;
                moved = true;
            }
        }
        t->ap_clk = 1;
        t->eval();
        cycle++;
        quiet = moved ? 0 : quiet + 1;
        if (quiet > timeout) {
            stalled = true;
            break;
        }
    }
    for (int i = 0; i < LAYER_COUNT; i++) outs[i].save(dir + "/l" + std::to_string(i) + "_out");
    FILE* s = fopen((dir + "/summary.json").c_str(), "w");
    fprintf(s, "{\"cycles\": %llu, \"stalled\": %s, \"words\": [", (unsigned long long)cycle,
            stalled ? "true" : "false");
    for (int i = 0; i < LAYER_COUNT; i++)
        fprintf(s, "%s%zu", i ? ", " : "", outs[i].cycles.size());
    fprintf(s, "], ");
    axis.write_json(s, "layer");
    fprintf(s, "}\n");
    fclose(s);
    t->final();
    delete t;
    delete context;
    return stalled ? 3 : 0;
}
