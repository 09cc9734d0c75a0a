// xnorflow_dwc: a stream width converter between words of IN and OUT elements of EBITS bits
// each (element 0 in the least significant bits, words padded to whole bytes), one word per
// cycle on both sides. (finn-rtllib's dwc_axi needs a Verilator fix for some width pairs; this
// one uses only fixed part-selects, so Verilator and yosys take any pair.)
//
// OUT a multiple of IN: K = OUT/IN input words fill one output word; IN a multiple of OUT: one
// input word gives K = IN/OUT output words; otherwise both, through a word of lcm(IN, OUT)
// elements, so neither side waits for the other.

module xnorflow_dwc #(
	int unsigned  EBITS = 1,
	int unsigned  IN = 1,
	int unsigned  OUT = 1
)(
	input	logic  ap_clk,
	input	logic  ap_rst_n,

	output	logic  in0_V_TREADY,
	input	logic  in0_V_TVALID,
	input	logic [((IN*EBITS+7)/8)*8-1:0]  in0_V_TDATA,

	input	logic  out0_V_TREADY,
	output	logic  out0_V_TVALID,
	output	logic [((OUT*EBITS+7)/8)*8-1:0]  out0_V_TDATA
);
	function automatic int unsigned gcd(input int unsigned a, input int unsigned b);
		automatic int unsigned  x = a, y = b, t;
		while (y != 0) begin
			t = x % y;
			x = y;
			y = t;
		end
		return  x;
	endfunction
	localparam int unsigned  LCM = IN / gcd(IN, OUT) * OUT;
	localparam int unsigned  OUT_W = ((OUT*EBITS+7)/8)*8;

	if (IN == OUT) begin : genSame
		assign  in0_V_TREADY = out0_V_TREADY;
		assign  out0_V_TVALID = in0_V_TVALID;
		assign  out0_V_TDATA = OUT_W'(in0_V_TDATA[IN*EBITS-1:0]);
	end
	else if (OUT % IN == 0) begin : genUp
		xnorflow_dwc_up #(.W(IN*EBITS), .K(OUT/IN)) up (
			.clk(ap_clk), .rst(!ap_rst_n),
			.idat(in0_V_TDATA[IN*EBITS-1:0]), .ivld(in0_V_TVALID), .irdy(in0_V_TREADY),
			.odat(out0_V_TDATA[OUT*EBITS-1:0]), .ovld(out0_V_TVALID), .ordy(out0_V_TREADY));
		if (OUT_W > OUT*EBITS)  assign  out0_V_TDATA[OUT_W-1:OUT*EBITS] = '0;
	end
	else if (IN % OUT == 0) begin : genDown
		xnorflow_dwc_down #(.W(OUT*EBITS), .K(IN/OUT)) down (
			.clk(ap_clk), .rst(!ap_rst_n),
			.idat(in0_V_TDATA[IN*EBITS-1:0]), .ivld(in0_V_TVALID), .irdy(in0_V_TREADY),
			.odat(out0_V_TDATA[OUT*EBITS-1:0]), .ovld(out0_V_TVALID), .ordy(out0_V_TREADY));
		if (OUT_W > OUT*EBITS)  assign  out0_V_TDATA[OUT_W-1:OUT*EBITS] = '0;
	end
	else begin : genBoth
		logic [LCM*EBITS-1:0]  wide;
		logic  wide_vld, wide_rdy;
		xnorflow_dwc_up #(.W(IN*EBITS), .K(LCM/IN)) up (
			.clk(ap_clk), .rst(!ap_rst_n),
			.idat(in0_V_TDATA[IN*EBITS-1:0]), .ivld(in0_V_TVALID), .irdy(in0_V_TREADY),
			.odat(wide), .ovld(wide_vld), .ordy(wide_rdy));
		xnorflow_dwc_down #(.W(OUT*EBITS), .K(LCM/OUT)) down (
			.clk(ap_clk), .rst(!ap_rst_n),
			.idat(wide), .ivld(wide_vld), .irdy(wide_rdy),
			.odat(out0_V_TDATA[OUT*EBITS-1:0]), .ovld(out0_V_TVALID), .ordy(out0_V_TREADY));
		if (OUT_W > OUT*EBITS)  assign  out0_V_TDATA[OUT_W-1:OUT*EBITS] = '0;
	end
endmodule : xnorflow_dwc

// K words of W bits into one of K*W (the first word in the lowest bits)
module xnorflow_dwc_up #(
	int unsigned  W = 1,
	int unsigned  K = 2
)(
	input	logic  clk,
	input	logic  rst,
	input	logic [W-1:0]  idat,
	input	logic  ivld,
	output	logic  irdy,
	output	logic [K*W-1:0]  odat,
	output	logic  ovld,
	input	logic  ordy
);
	localparam int unsigned  NBITS = $clog2(K + 1);
	logic [NBITS-1:0]  n;        // words held; the output is valid when all K are
	assign  ovld = n == K;
	assign  irdy = n < K || ordy;
	always_ff @(posedge clk) begin
		if (rst)  n <= 0;
		else begin
			automatic logic [NBITS-1:0]  next = (ovld && ordy)? 0 : n;
			if (ivld && irdy) begin
				for (int unsigned i = 0; i < K; i++)
					if (next == i)  odat[i*W +: W] <= idat;
				next = next + 1;
			end
			n <= next;
		end
	end
endmodule : xnorflow_dwc_up

// one word of K*W bits into K of W (the lowest bits first)
module xnorflow_dwc_down #(
	int unsigned  W = 1,
	int unsigned  K = 2
)(
	input	logic  clk,
	input	logic  rst,
	input	logic [K*W-1:0]  idat,
	input	logic  ivld,
	output	logic  irdy,
	output	logic [W-1:0]  odat,
	output	logic  ovld,
	input	logic  ordy
);
	localparam int unsigned  JBITS = K > 1? $clog2(K) : 1;
	logic [K*W-1:0]  held;
	logic [JBITS-1:0]  j;        // the word of `held` on the output
	logic  have;
	assign  ovld = have;
	assign  irdy = !have || (ordy && j == K - 1);
	always_comb begin
		odat = held[W-1:0];
		for (int unsigned i = 1; i < K; i++)
			if (j == i)  odat = held[i*W +: W];
	end
	always_ff @(posedge clk) begin
		if (rst) begin
			have <= 0;
			j <= 0;
		end
		else begin
			if (ovld && ordy) begin
				if (j == K - 1) begin
					have <= 0;
					j <= 0;
				end
				else  j <= j + 1;
			end
			if (ivld && irdy) begin
				held <= idat;
				have <= 1;
				j <= 0;
			end
		end
	end
endmodule : xnorflow_dwc_down
