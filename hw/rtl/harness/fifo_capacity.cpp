// The run-time capacity of each FIFO gauge (FINN's fifo_gauge, patched by xnorflow.hw.rtl.rtllib
// to ask for one through DPI): XNORFLOW_FIFO_CAPACITY="NAME=DEPTH,NAME=DEPTH,..." names the
// FIFO instances of the design (xnorflow_top's instance names); a FIFO not named is unbounded.
// One simulator then tries every depth of the FIFO-sizing search without a recompile.
#include <cstdlib>
#include <cstring>
#include <string>

extern "C" unsigned int xnorflow_fifo_capacity(const char* path) {
    const char* list = getenv("XNORFLOW_FIFO_CAPACITY");
    if (!list) return 0xFFFFFFFFu;
    std::string text(list), where(path);
    size_t start = 0;
    while (start < text.size()) {
        size_t end = text.find(',', start);
        if (end == std::string::npos) end = text.size();
        std::string item = text.substr(start, end - start);
        size_t eq = item.find('=');
        // the instance is ".NAME." inside the path (TOP.xnorflow_tb.dut.NAME.fifo)
        if (eq != std::string::npos &&
            where.find("." + item.substr(0, eq) + ".") != std::string::npos)
            return (unsigned int)strtoul(item.c_str() + eq + 1, nullptr, 10);
        start = end + 1;
    }
    return 0xFFFFFFFFu;
}
