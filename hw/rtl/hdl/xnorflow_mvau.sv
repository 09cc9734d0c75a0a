// xnorflow_mvau: one FINN MVAU layer (matrix-vector-activation unit) as RTL.
//
// PE neurons x SIMD inputs per cycle. XNOR = 1: binary inputs and weights, each product is
// XNOR and the accumulator counts the matches (FINN's binaryXnorMode, qonnx's
// XnorPopcountMatMul). XNOR = 0: two's complement or unsigned multiply-accumulate (the 8-bit
// first layer of a CNN). NTHRES > 0 fuses the next MultiThreshold: the output of a neuron is
// ACTVAL + the number of its thresholds the accumulator reaches (acc >= T); NTHRES = 0 outputs
// the accumulator itself.
//
// Schedule as in finn-hlslib's Matrix_Vector_Activate_Batch: per input vector the SF = MW/SIMD
// input words are read while the first neuron fold (nf = 0) is computed and kept for the other
// NF - 1 folds; one output word of PE elements per fold; NF * SF cycles per vector.
//
// Streams are AXI-stream words as FINN packs them: element 0 in the least significant bits, each
// element IBITS (OBITS) wide, the word padded to whole bytes. Weights and thresholds are ROMs
// read one cycle ahead (block or distributed RAM in synthesis), initialized from the files the
// generator writes (xnorflow.hw.rtl.layers): weight word nf*SF + sf holds, at bit
// (p*SIMD + s)*WBITS, the weight of input sf*SIMD + s of neuron nf*PE + p; threshold word nf
// holds, at bit (p*NTHRES + i)*TBITS, threshold i of neuron nf*PE + p (TBITS-bit two's
// complement).

module xnorflow_mvau #(
	int unsigned  MW = 8,
	int unsigned  MH = 8,
	int unsigned  PE = 1,
	int unsigned  SIMD = 1,
	int unsigned  VECTORS = 1,      // input vectors per frame
	int unsigned  IBITS = 1,
	int unsigned  WBITS = 1,
	int unsigned  OBITS = 1,
	int unsigned  ABITS = 8,        // accumulator bits, one more than the unsigned range needs
	int unsigned  TBITS = 9,
	int unsigned  NTHRES = 1,
	bit           XNOR = 1,
	bit           ISIGNED = 0,
	bit           WSIGNED = 0,
	int           ACTVAL = 0,
	parameter     WEIGHTS_FILE = "",
	parameter     THRESHOLDS_FILE = "",
	parameter     RAM_STYLE = "auto"
)(
	input	logic  ap_clk,
	input	logic  ap_rst_n,

	output	logic  in0_V_TREADY,
	input	logic  in0_V_TVALID,
	input	logic [((SIMD*IBITS+7)/8)*8-1:0]  in0_V_TDATA,

	input	logic  out0_V_TREADY,
	output	logic  out0_V_TVALID,
	output	logic [((PE*OBITS+7)/8)*8-1:0]  out0_V_TDATA
);
	localparam int unsigned  SF = MW / SIMD;
	localparam int unsigned  NF = MH / PE;
	localparam int unsigned  XW = SIMD * IBITS;
	localparam int unsigned  WW = PE * SIMD * WBITS;
	localparam int unsigned  TW = NTHRES > 0? PE * NTHRES * TBITS : PE;
	localparam int unsigned  WDEPTH = NF * SF;
	localparam int unsigned  WABITS = WDEPTH > 1? $clog2(WDEPTH) : 1;
	localparam int unsigned  SFBITS = SF > 1? $clog2(SF) : 1;
	localparam int unsigned  NFBITS = NF > 1? $clog2(NF) : 1;
	localparam int unsigned  OUT_W = ((PE*OBITS+7)/8)*8;
	localparam int unsigned  TSEL = NTHRES > 0? NTHRES * TBITS : 1;

	// ROMs, read one cycle ahead of their use; the weights in the memory FINN's ram_style
	// asks for (block, distributed, or the tool's choice)
	logic [WW-1:0]  weight_word;
	logic [TW-1:0]  thresholds [NF];
	initial  if (NTHRES > 0)  $readmemh(THRESHOLDS_FILE, thresholds);

	// the input words of the current vector, kept for the folds after the first
	logic [XW-1:0]  kept [SF];

	logic [NFBITS-1:0]  nf;
	logic [SFBITS-1:0]  sf;

	// stage 1: the step issued in the previous cycle
	logic               s1_valid, s1_first, s1_last;
	logic [XW-1:0]      s1_x;
	logic [WW-1:0]      s1_w;
	logic [TW-1:0]      s1_t;

	logic  ovalid;
	logic [OUT_W-1:0]  odata;

	// the pipeline moves unless a finished fold waits for a full output register
	wire  advance = !(s1_valid && s1_last && ovalid && !out0_V_TREADY);
	wire  issue = advance && (nf != 0 || in0_V_TVALID);
	assign  in0_V_TREADY = advance && nf == 0;
	wire [XW-1:0]  x = nf == 0? in0_V_TDATA[XW-1:0] : kept[sf];
	wire [WABITS-1:0]  waddr = WABITS'(nf * SF + sf);

	if (RAM_STYLE == "block") begin : genBlock
		(* rom_style = "block", ram_style = "block" *) logic [WW-1:0]  weights [WDEPTH];
		initial  $readmemh(WEIGHTS_FILE, weights);
		always_ff @(posedge ap_clk)  if (advance)  weight_word <= weights[waddr];
	end
	else if (RAM_STYLE == "distributed") begin : genDistributed
		(* rom_style = "distributed", ram_style = "distributed" *) logic [WW-1:0]  weights [WDEPTH];
		initial  $readmemh(WEIGHTS_FILE, weights);
		always_ff @(posedge ap_clk)  if (advance)  weight_word <= weights[waddr];
	end
	else begin : genAuto
		logic [WW-1:0]  weights [WDEPTH];
		initial  $readmemh(WEIGHTS_FILE, weights);
		always_ff @(posedge ap_clk)  if (advance)  weight_word <= weights[waddr];
	end
	assign  s1_w = weight_word;

	always_ff @(posedge ap_clk) begin
		if (advance) begin
			s1_t <= thresholds[nf];
			s1_x <= x;
			if (nf == 0 && issue)  kept[sf] <= in0_V_TDATA[XW-1:0];
		end
	end

	always_ff @(posedge ap_clk) begin
		if (!ap_rst_n) begin
			nf <= 0;
			sf <= 0;
			s1_valid <= 0;
			s1_first <= 0;
			s1_last <= 0;
		end
		else if (advance) begin
			s1_valid <= issue;
			s1_first <= sf == 0;
			s1_last <= sf == SF - 1;
			if (issue) begin
				if (sf == SF - 1) begin
					sf <= 0;
					nf <= nf == NF - 1? 0 : nf + 1;
				end
				else  sf <= sf + 1;
			end
		end
	end

	// the PE neurons: one lane module each, so that synthesis maps a lane once and instantiates
	// it PE times (hierarchical synthesis), instead of optimizing PE copies of the same logic
	logic [PE*OBITS-1:0]  results;
	for (genvar p = 0; p < PE; p++) begin : genLane
		xnorflow_mvau_lane #(
			.SIMD(SIMD), .IBITS(IBITS), .WBITS(WBITS), .OBITS(OBITS), .ABITS(ABITS),
			.TBITS(TBITS), .NTHRES(NTHRES), .XNOR(XNOR), .ISIGNED(ISIGNED), .WSIGNED(WSIGNED),
			.ACTVAL(ACTVAL)
		) lane (
			.clk(ap_clk), .step(advance && s1_valid), .first(s1_first), .last(s1_last),
			.x(s1_x), .w(s1_w[p*SIMD*WBITS +: SIMD*WBITS]),
			.t(s1_t[p*TSEL +: TSEL]), .result(results[p*OBITS +: OBITS])
		);
	end

	always_ff @(posedge ap_clk) begin
		if (!ap_rst_n)  ovalid <= 0;
		else begin
			if (out0_V_TREADY)  ovalid <= 0;
			if (advance && s1_valid && s1_last)  ovalid <= 1;
		end
	end
	assign  odata[PE*OBITS-1:0] = results;
	if (OUT_W > PE*OBITS) begin : genPad
		assign  odata[OUT_W-1:PE*OBITS] = '0;
	end
	assign  out0_V_TVALID = ovalid;
	assign  out0_V_TDATA = odata;

endmodule : xnorflow_mvau

// One neuron of the MVAU: the sum over SIMD inputs of a step added to its accumulator (the first
// step of a fold starts it), and at the fold's last step the output: ACTVAL + the thresholds the
// sum reaches, or the sum itself (NTHRES = 0). Registered like the MVAU's output word.
module xnorflow_mvau_lane #(
	int unsigned  SIMD = 1,
	int unsigned  IBITS = 1,
	int unsigned  WBITS = 1,
	int unsigned  OBITS = 1,
	int unsigned  ABITS = 8,
	int unsigned  TBITS = 9,
	int unsigned  NTHRES = 1,
	bit           XNOR = 1,
	bit           ISIGNED = 0,
	bit           WSIGNED = 0,
	int           ACTVAL = 0
)(
	input	logic  clk,
	input	logic  step,     // a step of this fold is in stage 1
	input	logic  first,
	input	logic  last,
	input	logic [SIMD*IBITS-1:0]  x,
	input	logic [SIMD*WBITS-1:0]  w,
	input	logic [(NTHRES > 0? NTHRES * TBITS : 1)-1:0]  t,
	output	logic [OBITS-1:0]  result
);
	localparam int unsigned  CW = ABITS > TBITS? ABITS : TBITS;

	function automatic logic signed [ABITS-1:0] lane_sum(input logic [SIMD*IBITS-1:0] xv,
	                                                    input logic [SIMD*WBITS-1:0] wv);
		automatic logic signed [ABITS-1:0]  sum = 0;
		// XNOR-popcount as one $countones: simulators count a whole word at a time (Verilator
		// with the CPU's popcount) instead of SIMD one-bit additions
		if (XNOR)  return  ABITS'($countones(xv[SIMD-1:0] ~^ wv[SIMD-1:0]));
		for (int unsigned s = 0; s < SIMD; s++) begin
			automatic logic signed [IBITS:0]  xe = ISIGNED? {xv[s*IBITS+IBITS-1], xv[s*IBITS +: IBITS]}
			                                             : {1'b0, xv[s*IBITS +: IBITS]};
			automatic logic signed [WBITS:0]  we = WSIGNED? {wv[s*WBITS+WBITS-1], wv[s*WBITS +: WBITS]}
			                                             : {1'b0, wv[s*WBITS +: WBITS]};
			automatic logic signed [ABITS-1:0]  xa = xe;   // sign-extended
			automatic logic signed [ABITS-1:0]  wa = we;
			sum += xa * wa;
		end
		return  sum;
	endfunction

	function automatic logic [OBITS-1:0] activate(input logic signed [ABITS-1:0] a,
	                                              input logic [(NTHRES > 0? NTHRES * TBITS : 1)-1:0] tv_all);
		automatic int  level = ACTVAL;
		automatic logic signed [CW-1:0]  av = a;
		if (NTHRES == 0)  return  OBITS'(a);
		for (int unsigned i = 0; i < NTHRES; i++) begin
			automatic logic signed [CW-1:0]  tv = $signed(tv_all[i*TBITS +: TBITS]);
			if (av >= tv)  level++;
		end
		return  OBITS'(level);
	endfunction

	logic signed [ABITS-1:0]  acc;
	wire signed [ABITS-1:0]  total = (first? ABITS'(0) : acc) + lane_sum(x, w);
	always_ff @(posedge clk) begin
		if (step) begin
			acc <= total;
			if (last)  result <= activate(total, t);
		end
	end
endmodule : xnorflow_mvau_lane
