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
// Pipelined so that no path holds more than one adder or one ROM read (100 MHz on an ECP5,
// speed grade 6, measured by benchmarks/timing_closure.py): the weight ROM's output is
// registered twice more (a block RAM's clock-to-output is slow, 5.8 ns on an ECP5 EBR whose
// output register yosys does not use, so the route to the lanes gets a cycle of its own), the sum over SIMD inputs is a tree of registered levels (popcounts of
// CHUNK bits, then pairwise additions), and the accumulator, the threshold comparisons and
// the level count are stages of their own. The pipeline never stalls: a step is issued only
// when its result has a place in the output FIFO (credits), so back-pressure reaches the
// issue logic through a register instead of every stage's enable. Throughput is unchanged
// (one step per cycle: NF * SF cycles per vector); the latency grows by LATENCY cycles.
//
// Streams are AXI-stream words as FINN packs them: element 0 in the least significant bits, each
// element IBITS (OBITS) wide, the word padded to whole bytes. Weights and thresholds are ROMs
// read one cycle ahead (block or distributed RAM in synthesis), initialized from the files the
// generator writes (xnorflow.hw.rtl.layers): weight word nf*SF + sf holds, at bit
// (p*SIMD + s)*WBITS, the weight of input sf*SIMD + s of neuron nf*PE + p; threshold word nf
// holds, at bit (p*NTHRES + i)*TBITS, threshold i of neuron nf*PE + p (TBITS-bit two's
// complement).

package xnorflow_mvau_pkg;
	// inputs per leaf of the sum tree: an XNOR leaf popcounts CHUNK bits, others multiply one
	function automatic int unsigned chunk(input bit binary);
		return  binary? 8 : 1;
	endfunction
	// the tree's levels of pairwise additions above its leaves
	function automatic int unsigned levels(input int unsigned simd, input bit binary);
		automatic int unsigned  leaves = (simd + chunk(binary) - 1) / chunk(binary);
		return  leaves > 1? $clog2(leaves) : 0;
	endfunction
	// stages from a step's issue to the accumulator: ROM read, two ROM output registers,
	// leaves, each level
	function automatic int unsigned to_acc(input int unsigned simd, input bit binary);
		return  3 + 1 + levels(simd, binary);
	endfunction
	// cycles from a step's issue to its result in the output queue: then the accumulator, the
	// comparisons and the level count
	function automatic int unsigned latency(input int unsigned simd, input bit binary);
		return  to_acc(simd, binary) + 1 + 2;
	endfunction
endpackage : xnorflow_mvau_pkg

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
	localparam int unsigned  LATENCY = xnorflow_mvau_pkg::latency(SIMD, XNOR);
	localparam int unsigned  TO_ACC = xnorflow_mvau_pkg::to_acc(SIMD, XNOR);
	// the output FIFO holds every result in flight and one more, so that a full-rate consumer
	// never waits for a credit (SF = 1: one result per cycle)
	localparam int unsigned  FIFO_DEPTH = 1 << $clog2(LATENCY + 2);

	logic [TW-1:0]  thresholds [NF];
	initial  if (NTHRES > 0)  $readmemh(THRESHOLDS_FILE, thresholds);

	// the input words of the current vector, kept for the folds after the first
	logic [XW-1:0]  kept [SF];

	logic [NFBITS-1:0]  nf;
	logic [SFBITS-1:0]  sf;
	// the weight address nf * SF + sf, kept as a counter of its own: the ROMs of a wide layer
	// are spread over the chip, and the route to them is long enough without an adder before it
	logic [WABITS-1:0]  waddr;
	// the issue's decisions from registers alone (one LUT level to the enables): sf at a fold's
	// last step, nf at the first fold, a place left in the output queue (xnorflow_result_queue)
	logic  at_last, first_fold, has_credit;

	// a fold's last step needs a credit; the input is taken only at the first fold
	wire  may_issue = !at_last || has_credit;
	wire  issue = may_issue && (!first_fold || in0_V_TVALID);
	assign  in0_V_TREADY = may_issue && first_fold;
	wire [XW-1:0]  x = first_fold? in0_V_TDATA[XW-1:0] : kept[sf];
	wire  promise = issue && at_last;

	always_ff @(posedge ap_clk) begin
		if (!ap_rst_n) begin
			nf <= 0;
			sf <= 0;
			waddr <= 0;
			at_last <= SF == 1;
			first_fold <= 1;
		end
		else begin
			if (issue) begin
				waddr <= waddr == WABITS'(WDEPTH - 1)? 0 : waddr + 1;
				if (at_last) begin
					sf <= 0;
					nf <= nf == NF - 1? 0 : nf + 1;
					at_last <= SF == 1;
					first_fold <= NF == 1 || nf == NF - 1;
				end
				else begin
					sf <= sf + 1;
					at_last <= sf == SF - 2;
				end
			end
		end
	end
	always_ff @(posedge ap_clk)  if (first_fold && issue)  kept[sf] <= in0_V_TDATA[XW-1:0];

	// the weight ROM in the memory FINN's ram_style asks for (block, distributed, or the
	// tool's choice), read in stage 1 and registered again in stages 2 and 3
	logic [WW-1:0]  w1, w2, w3;
	logic [XW-1:0]  x1, x2, x3;
	if (RAM_STYLE == "block") begin : genBlock
		(* rom_style = "block", ram_style = "block" *) logic [WW-1:0]  weights [WDEPTH];
		initial  $readmemh(WEIGHTS_FILE, weights);
		always_ff @(posedge ap_clk)  w1 <= weights[waddr];
	end
	else if (RAM_STYLE == "distributed") begin : genDistributed
`ifdef XNORFLOW_YOSYS
		// yosys: the ROM in LUTs as logic (its LUTRAM mapping finds no place for a wide ROM)
		(* rom_style = "logic" *) logic [WW-1:0]  weights [WDEPTH];
`else
		(* rom_style = "distributed", ram_style = "distributed" *) logic [WW-1:0]  weights [WDEPTH];
`endif
		initial  $readmemh(WEIGHTS_FILE, weights);
		always_ff @(posedge ap_clk)  w1 <= weights[waddr];
	end
	else begin : genAuto
		logic [WW-1:0]  weights [WDEPTH];
		initial  $readmemh(WEIGHTS_FILE, weights);
		always_ff @(posedge ap_clk)  w1 <= weights[waddr];
	end
	always_ff @(posedge ap_clk) begin
		x1 <= x;
		x2 <= x1;
		x3 <= x2;
		w2 <= w1;
		w3 <= w2;
	end

	// a step's flags and fold, stage by stage from the issue (index k: after k cycles)
	logic [TO_ACC:1]  valid_at, first_at, last_at;
	logic [NFBITS-1:0]  nf_at [TO_ACC:1];
	always_ff @(posedge ap_clk) begin
		if (!ap_rst_n)  valid_at <= '0;
		else  valid_at <= {valid_at[TO_ACC-1:1], issue};
		first_at <= {first_at[TO_ACC-1:1], sf == 0};
		last_at <= {last_at[TO_ACC-1:1], at_last};
		nf_at[1] <= nf;
		for (int unsigned k = 2; k <= TO_ACC; k++)  nf_at[k] <= nf_at[k-1];
	end
	wire  acc_step = valid_at[TO_ACC];
	wire  acc_done = acc_step && last_at[TO_ACC];

	// the fold's thresholds, read while its last step is accumulated: ready for the comparison
	logic [TW-1:0]  fold_thresholds;
	always_ff @(posedge ap_clk)  fold_thresholds <= thresholds[nf_at[TO_ACC]];

	// accumulated -> compared -> counted -> into the FIFO
	logic [3:1]  done_at;
	always_ff @(posedge ap_clk) begin
		if (!ap_rst_n)  done_at <= '0;
		else  done_at <= {done_at[2:1], acc_done};
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
			.clk(ap_clk), .x(x3), .w(w3[p*SIMD*WBITS +: SIMD*WBITS]),
			.acc_step(acc_step), .acc_first(first_at[TO_ACC]),
			.t(fold_thresholds[p*TSEL +: TSEL]), .result(results[p*OBITS +: OBITS])
		);
	end

	// the output: a result enters when its fold is counted, into the place its issue promised
	xnorflow_result_queue #(.WIDTH(PE*OBITS), .DEPTH(FIFO_DEPTH), .OUT_W(OUT_W)) results_out (
		.clk(ap_clk), .rst_n(ap_rst_n), .promise(promise), .has_credit(has_credit),
		.push(done_at[3]), .result(results),
		.out_TREADY(out0_V_TREADY), .out_TVALID(out0_V_TVALID), .out_TDATA(out0_V_TDATA)
	);

endmodule : xnorflow_mvau

// One neuron of the MVAU, a free-running pipeline (only the accumulator has an enable): the
// SIMD products in leaves of CHUNK (XNOR popcounts or products), added pairwise level by level,
// each level registered; the accumulator (acc_step: a valid step is at this stage; acc_first:
// it starts a fold); then the comparisons with the fold's thresholds and the level count, or
// the sum itself (NTHRES = 0). result holds a fold's output three cycles after its last step
// was accumulated (xnorflow_mvau_pkg::latency).
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
	input	logic [SIMD*IBITS-1:0]  x,
	input	logic [SIMD*WBITS-1:0]  w,
	input	logic  acc_step,
	input	logic  acc_first,
	input	logic [(NTHRES > 0? NTHRES * TBITS : 1)-1:0]  t,
	output	logic [OBITS-1:0]  result
);
	localparam int unsigned  CW = ABITS > TBITS? ABITS : TBITS;
	localparam int unsigned  CHUNK = xnorflow_mvau_pkg::chunk(XNOR);
	localparam int unsigned  LEAVES = (SIMD + CHUNK - 1) / CHUNK;
	localparam int unsigned  LEVELS = xnorflow_mvau_pkg::levels(SIMD, XNOR);
	localparam int unsigned  NODES = 1 << LEVELS;          // leaves, padded with zeros

	// leaf l: the popcount of the XNORs of inputs [l*CHUNK, (l+1)*CHUNK), or product l
	function automatic logic signed [ABITS-1:0] leaf(input logic [SIMD*IBITS-1:0] xv,
	                                                input logic [SIMD*WBITS-1:0] wv,
	                                                input int unsigned l);
		automatic logic signed [IBITS:0]  xe;
		automatic logic signed [WBITS:0]  we;
		automatic logic signed [ABITS-1:0]  xa, wa;
		automatic logic [ABITS-1:0]  part [CHUNK];
		if (XNOR) begin   // a balanced popcount: log2(CHUNK) additions deep, not CHUNK
			for (int unsigned s = 0; s < CHUNK; s++)
				// the XNOR in one bit: a cast to ABITS would widen its operands first
				part[s] = l * CHUNK + s < SIMD && xv[l*CHUNK+s] == wv[l*CHUNK+s]? ABITS'(1) : '0;
			for (int unsigned n = CHUNK / 2; n > 0; n /= 2)
				for (int unsigned s = 0; s < n; s++)  part[s] = part[2*s] + part[2*s+1];
			return  part[0];
		end
		xe = ISIGNED? {xv[l*IBITS+IBITS-1], xv[l*IBITS +: IBITS]} : {1'b0, xv[l*IBITS +: IBITS]};
		we = WSIGNED? {wv[l*WBITS+WBITS-1], wv[l*WBITS +: WBITS]} : {1'b0, wv[l*WBITS +: WBITS]};
		xa = xe;   // sign-extended
		wa = we;
		return  xa * wa;
	endfunction

	// the tree: level 0 the registered leaves, level k + 1 the registered pairwise sums of k
	logic signed [ABITS-1:0]  node [LEVELS+1][NODES];
	always_ff @(posedge clk) begin
		for (int unsigned l = 0; l < NODES; l++)
			node[0][l] <= l < LEAVES? leaf(x, w, l) : '0;
		for (int unsigned k = 1; k <= LEVELS; k++)
			for (int unsigned n = 0; n < (NODES >> k); n++)
				node[k][n] <= node[k-1][2*n] + node[k-1][2*n+1];
	end

	logic signed [ABITS-1:0]  acc;
	always_ff @(posedge clk)  if (acc_step)  acc <= (acc_first? ABITS'(0) : acc) + node[LEVELS][0];

	// the comparisons of the accumulated fold (its last step accumulated the cycle before)
	if (NTHRES > 0) begin : genThresholds
		logic [NTHRES-1:0]  reached;
		always_ff @(posedge clk) begin
			for (int unsigned i = 0; i < NTHRES; i++)
				reached[i] <= $signed(CW'(acc)) >= $signed(CW'($signed(t[i*TBITS +: TBITS])));
			result <= OBITS'(ACTVAL + $countones(reached));
		end
	end
	else begin : genSum
		logic signed [ABITS-1:0]  sum;
		always_ff @(posedge clk) begin
			sum <= acc;
			result <= OBITS'(sum);
		end
	end
endmodule : xnorflow_mvau_lane
