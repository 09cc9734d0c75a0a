// Drives every layer of xnorflow_layers_tb on its own: layer i reads l<i>_in.bin at full
// rate, its output always ready; its output words and their cycles go to l<i>_out.bin and
// l<i>_out.cycles. layers_taps.h (generated) names the ports.
#include "common.h"
#include "layers_taps.h"

int main(int argc, char** argv) {
    if (argc < 3 + LAYER_COUNT) {
        fprintf(stderr, "usage: %s dir timeout words_0 ... words_%d\n", argv[0],
                LAYER_COUNT - 1);
        return 2;
    }
    std::string dir = argv[1];
    uint64_t timeout = strtoull(argv[2], nullptr, 10);
    std::vector<uint64_t> expected;
    std::vector<std::vector<uint8_t>> inputs;
    for (int i = 0; i < LAYER_COUNT; i++) {
        expected.push_back(strtoull(argv[3 + i], nullptr, 10));
        inputs.push_back(read_file(dir + "/l" + std::to_string(i) + "_in.bin"));
    }
    VerilatedContext* context = new VerilatedContext;
    TB* t = new TB{context};
    std::vector<Recorder> outs;
    for (int i = 0; i < LAYER_COUNT; i++) outs.push_back(Recorder{OUT_BYTES[i]});
    std::vector<uint64_t> next(LAYER_COUNT, 0);
    uint8_t word[MAX_BYTES];

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
        drive_layers(t, inputs, next);
        t->ap_clk = 0;
        t->eval();
        bool moved = sample_layers(t, cycle, outs, next, word);
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
    fprintf(s, "]}\n");
    fclose(s);
    t->final();
    delete t;
    delete context;
    return stalled ? 3 : 0;
}
