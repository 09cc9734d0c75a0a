// xnorflow_labelselect: FINN's LabelSelect with K = 1 as RTL: the index of the largest of LABELS
// values, the lowest index on ties (as PyTorch's argmax and finn-hlslib).
//
// Pipelined for the clock: the PE values of a word meet in a tournament tree whose every level
// is registered (the lower index wins a tie), and the word's winner meets the vector's best so
// far in a last stage. A vector is taken only when the output FIFO has a place for its result
// (credits, as in xnorflow_mvau), so the pipeline never stalls.
//
// Per input vector, LABELS / PE words of PE values (value 0 of a word in its least significant
// bits, IBITS each, two's complement if ISIGNED) are read, one per cycle; then one output word
// holds the index (OBITS wide, padded to whole bytes). LABELS / PE cycles per vector.

module xnorflow_labelselect #(
	int unsigned  LABELS = 10,
	int unsigned  PE = 1,
	int unsigned  IBITS = 8,
	bit           ISIGNED = 0,
	int unsigned  OBITS = 8
)(
	input	logic  ap_clk,
	input	logic  ap_rst_n,

	output	logic  in0_V_TREADY,
	input	logic  in0_V_TVALID,
	input	logic [((PE*IBITS+7)/8)*8-1:0]  in0_V_TDATA,

	input	logic  out0_V_TREADY,
	output	logic  out0_V_TVALID,
	output	logic [((OBITS+7)/8)*8-1:0]  out0_V_TDATA
);
	localparam int unsigned  WORDS = LABELS / PE;
	localparam int unsigned  CBITS = WORDS > 1? $clog2(WORDS) : 1;
	localparam int unsigned  OUT_W = ((OBITS+7)/8)*8;
	localparam int unsigned  LEVELS = PE > 1? $clog2(PE) : 0;
	localparam int unsigned  NODES = 1 << LEVELS;
	// stages from the input to the running best: the registered word, then each tree level
	localparam int unsigned  TO_BEST = 1 + LEVELS;
	localparam int unsigned  FIFO_DEPTH = 1 << $clog2(TO_BEST + 4);

	function automatic logic signed [IBITS:0] value(input logic [PE*IBITS-1:0] w, input int unsigned p);
		return  ISIGNED? {w[p*IBITS+IBITS-1], w[p*IBITS +: IBITS]} : {1'b0, w[p*IBITS +: IBITS]};
	endfunction

	// the input: a vector's first word needs a place for its result
	logic [CBITS-1:0]  word;
	logic [OBITS-1:0]  base;            // word * PE: the index of the word's first value
	logic  has_credit;                  // a place left in the output queue
	assign  in0_V_TREADY = word != 0 || has_credit;
	wire  take = in0_V_TVALID && in0_V_TREADY;
	always_ff @(posedge ap_clk) begin
		if (!ap_rst_n) begin
			word <= 0;
			base <= 0;
		end
		else begin
			if (take) begin
				word <= word == WORDS - 1? 0 : word + 1;
				base <= word == WORDS - 1? 0 : base + OBITS'(PE);
			end
		end
	end

	// the tournament: level 0 the registered word, level k + 1 the winners of level k's pairs
	logic signed [IBITS:0]  val [LEVELS+1][NODES];
	logic [OBITS-1:0]       idx [LEVELS+1][NODES];
	logic                   here [LEVELS+1][NODES];   // a value, not padding
	always_ff @(posedge ap_clk) begin
		for (int unsigned n = 0; n < NODES; n++) begin
			val[0][n] <= n < PE? value(in0_V_TDATA[PE*IBITS-1:0], n) : '0;
			idx[0][n] <= base + OBITS'(n);
			here[0][n] <= n < PE;
		end
		for (int unsigned k = 1; k <= LEVELS; k++)
			for (int unsigned n = 0; n < (NODES >> k); n++) begin
				// the right one (higher index) wins only when strictly greater
				automatic bit  right = here[k-1][2*n+1] &&
				                       (!here[k-1][2*n] || val[k-1][2*n+1] > val[k-1][2*n]);
				val[k][n] <= right? val[k-1][2*n+1] : val[k-1][2*n];
				idx[k][n] <= right? idx[k-1][2*n+1] : idx[k-1][2*n];
				here[k][n] <= here[k-1][2*n] || here[k-1][2*n+1];
			end
	end

	// a word's flags, stage by stage
	logic [TO_BEST:1]  valid_at, first_at, last_at;
	always_ff @(posedge ap_clk) begin
		for (int unsigned k = TO_BEST; k > 1; k--) begin   // (none when PE = 1)
			valid_at[k] <= valid_at[k-1];
			first_at[k] <= first_at[k-1];
			last_at[k] <= last_at[k-1];
		end
		valid_at[1] <= take;
		first_at[1] <= word == 0;
		last_at[1] <= word == WORDS - 1;
		if (!ap_rst_n)  valid_at <= '0;
	end

	// the vector's best so far; a later word wins only when strictly greater (lower index)
	logic signed [IBITS:0]  best;
	logic [OBITS-1:0]       best_index;
	wire  wins = first_at[TO_BEST] || val[LEVELS][0] > best;
	wire [OBITS-1:0]  winner = wins? idx[LEVELS][0] : best_index;
	always_ff @(posedge ap_clk)
		if (valid_at[TO_BEST] && wins) begin
			best <= val[LEVELS][0];
			best_index <= idx[LEVELS][0];
		end

	// the output: a vector's result enters with its last word, into the place its first took
	wire  done = valid_at[TO_BEST] && last_at[TO_BEST];
	xnorflow_result_queue #(.WIDTH(OBITS), .DEPTH(FIFO_DEPTH), .OUT_W(OUT_W)) result_out (
		.clk(ap_clk), .rst_n(ap_rst_n), .promise(take && word == 0), .has_credit(has_credit),
		.push(done), .result(winner),
		.out_TREADY(out0_V_TREADY), .out_TVALID(out0_V_TVALID), .out_TDATA(out0_V_TDATA)
	);

endmodule : xnorflow_labelselect
