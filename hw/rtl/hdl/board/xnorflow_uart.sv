// xnorflow_uart_link: the accelerator's AXI streams behind a UART (8 data bits, no parity, one
// stop bit), the host link of a board without a processor (the ULX3S's FTDI serial port).
//
// Bytes from the host fill the accelerator's input words, the first byte in the least
// significant bits (the byte order of FINN's packed input, as the PYNQ driver sends it); every
// output word goes back as its bytes, least significant first. A break from the host (the line
// held low for a whole character) resets the link and the accelerator, so that the host can
// start from a known state whatever it sent before. The host driver (xnorflow.hw.rtl.uart_host)
// is the same code for the board and for the Verilator simulation of this module.
//
// CLKS_PER_BIT: clock cycles per bit (clock / baud rate). The receiver never waits: a byte that
// arrives while the input word is still held is counted in `overruns` (the accelerator takes an
// input word in a few cycles, a byte takes 10 * CLKS_PER_BIT; a design whose output outgrows its
// input could fill up).

module xnorflow_uart_rx #(
	int unsigned  CLKS_PER_BIT = 868
)(
	input	logic  clk,
	input	logic  rst,
	input	logic  rxd,
	output	logic  valid,          // one cycle: data holds a received byte
	output	logic [7:0]  data,
	output	logic  break_seen      // one cycle: a character of zeros without its stop bit
);
	localparam int unsigned  CBITS = $clog2(CLKS_PER_BIT + 1);

	logic [2:0]  sync;           // the asynchronous line through two flip-flops (and one more)
	always_ff @(posedge clk)  sync <= {sync[1:0], rxd};
	wire  line = sync[2];

	logic              busy;
	logic              wait_high;  // after a break or framing error: until the line is idle
	logic [CBITS-1:0]  count;
	logic [3:0]        bit_index;  // 0: start bit, 1..8: data, 9: stop bit
	always_ff @(posedge clk) begin
		valid <= 0;
		break_seen <= 0;
		if (rst) begin
			busy <= 0;
			wait_high <= 1;
		end
		else if (!busy) begin
			if (line)  wait_high <= 0;
			else if (!wait_high) begin         // a start bit's falling edge: sample it in its middle
				busy <= 1;
				count <= CBITS'(CLKS_PER_BIT / 2);
				bit_index <= 0;
			end
		end
		else if (count != 0)  count <= count - 1;
		else begin
			count <= CBITS'(CLKS_PER_BIT - 1);
			if (bit_index == 0 && line)  busy <= 0;          // a glitch, not a start bit
			else if (bit_index == 9) begin
				busy <= 0;
				if (line)  valid <= 1;
				else begin
					wait_high <= 1;
					break_seen <= data == 0;
				end
			end
			else if (bit_index != 0)  data <= {line, data[7:1]};
			bit_index <= bit_index + 1;
		end
	end
endmodule : xnorflow_uart_rx

module xnorflow_uart_tx #(
	int unsigned  CLKS_PER_BIT = 868
)(
	input	logic  clk,
	input	logic  rst,
	input	logic  valid,
	output	logic  ready,
	input	logic [7:0]  data,
	output	logic  txd
);
	localparam int unsigned  CBITS = $clog2(CLKS_PER_BIT + 1);

	logic [9:0]        shift;      // stop bit, data, start bit: sent from bit 0
	logic [3:0]        left;       // bits still to send, and one idle bit that ends the stop bit
	logic [CBITS-1:0]  count;
	assign  ready = left == 0;
	always_ff @(posedge clk) begin
		if (rst) begin
			left <= 0;
			txd <= 1;
		end
		else if (left == 0) begin
			if (valid) begin
				shift <= {1'b1, data, 1'b0};
				left <= 11;
				count <= 0;
			end
		end
		else if (count != 0)  count <= count - 1;
		else begin
			txd <= shift[0];
			shift <= {1'b1, shift[9:1]};
			count <= CBITS'(CLKS_PER_BIT - 1);
			left <= left - 1;
		end
	end
endmodule : xnorflow_uart_tx

module xnorflow_uart_link #(
	int unsigned  CLKS_PER_BIT = 868,
	int unsigned  IN_BYTES = 1,       // the accelerator's input word, in bytes
	int unsigned  OUT_BYTES = 1       // its output word
)(
	input	logic  clk,
	input	logic  rst,
	input	logic  rxd,
	output	logic  txd,
	output	logic  accel_rst_n,       // the accelerator's reset: rst, or a break from the host

	output	logic [IN_BYTES*8-1:0]  m_axis_tdata,
	output	logic  m_axis_tvalid,
	input	logic  m_axis_tready,

	input	logic [OUT_BYTES*8-1:0]  s_axis_tdata,
	input	logic  s_axis_tvalid,
	output	logic  s_axis_tready,

	output	logic [7:0]  last_output,  // the first byte of the latest output word (the class)
	output	logic [15:0] overruns
);
	localparam int unsigned  IBITS = IN_BYTES > 1? $clog2(IN_BYTES) : 1;
	localparam int unsigned  OBITS = OUT_BYTES > 1? $clog2(OUT_BYTES) : 1;

	logic  byte_valid, break_seen;
	logic [7:0]  rx_byte;
	xnorflow_uart_rx #(.CLKS_PER_BIT(CLKS_PER_BIT)) receiver (
		.clk(clk), .rst(rst), .rxd(rxd), .valid(byte_valid), .data(rx_byte),
		.break_seen(break_seen));

	// a break resets everything behind the receiver for 16 cycles
	logic [4:0]  hold;
	wire  link_rst = rst || hold != 0;
	always_ff @(posedge clk) begin
		if (rst)  hold <= 16;
		else if (break_seen)  hold <= 16;
		else if (hold != 0)  hold <= hold - 1;
		accel_rst_n <= !link_rst;
	end

	// bytes -> input words
	logic [IBITS-1:0]  in_count;
	always_ff @(posedge clk) begin
		if (link_rst) begin
			in_count <= 0;
			m_axis_tvalid <= 0;
			overruns <= 0;
		end
		else begin
			if (m_axis_tvalid && m_axis_tready)  m_axis_tvalid <= 0;
			if (byte_valid) begin
				if (m_axis_tvalid && !m_axis_tready)  overruns <= overruns + 1;
				else begin
					m_axis_tdata[in_count*8 +: 8] <= rx_byte;
					if (in_count == IN_BYTES - 1) begin
						in_count <= 0;
						m_axis_tvalid <= 1;
					end
					else  in_count <= in_count + 1;
				end
			end
		end
	end

	// output words -> bytes
	logic [OUT_BYTES*8-1:0]  out_word;
	logic  out_full;
	logic [OBITS-1:0]  out_count;
	logic  tx_ready;
	assign  s_axis_tready = !out_full;
	always_ff @(posedge clk) begin
		if (link_rst) begin
			out_full <= 0;
			out_count <= 0;
		end
		else if (!out_full) begin
			if (s_axis_tvalid) begin
				out_word <= s_axis_tdata;
				out_full <= 1;
				out_count <= 0;
				last_output <= s_axis_tdata[7:0];
			end
		end
		else if (tx_ready) begin
			if (out_count == OUT_BYTES - 1)  out_full <= 0;
			else  out_count <= out_count + 1;
		end
	end
	xnorflow_uart_tx #(.CLKS_PER_BIT(CLKS_PER_BIT)) transmitter (
		.clk(clk), .rst(link_rst), .valid(out_full), .ready(tx_ready),
		.data(out_word[out_count*8 +: 8]), .txd(txd));
endmodule : xnorflow_uart_link
