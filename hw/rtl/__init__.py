"""The accelerator as RTL without vendor tools (``xnorflow build --backend rtl``): Verilog for
every layer, cycle-accurate simulation with Verilator, FIFO sizing, yosys synthesis and a Vivado
project script (see :mod:`.backend`)."""
