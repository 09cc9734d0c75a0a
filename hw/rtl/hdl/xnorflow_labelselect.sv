// xnorflow_labelselect: FINN's LabelSelect with K = 1 as RTL: the index of the largest of LABELS
// values, the lowest index on ties (as PyTorch's argmax and finn-hlslib).
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

	logic [CBITS-1:0]  word;
	logic signed [IBITS:0]  best;       // one bit more: unsigned values compare as signed
	logic [OBITS-1:0]  best_index;
	logic  ovalid;
	logic [OBITS-1:0]  odata;

	// a new vector may start only once the last result has been taken
	assign  in0_V_TREADY = !ovalid || out0_V_TREADY;
	wire  take = in0_V_TVALID && in0_V_TREADY;

	function automatic logic signed [IBITS:0] value(input logic [PE*IBITS-1:0] w, input int unsigned p);
		return  ISIGNED? {w[p*IBITS+IBITS-1], w[p*IBITS +: IBITS]} : {1'b0, w[p*IBITS +: IBITS]};
	endfunction

	// the largest of this word, against the best so far (strictly greater wins: lowest index)
	logic signed [IBITS:0]  word_best;
	logic [OBITS-1:0]  word_index;
	always_comb begin
		word_best = word == 0? value(in0_V_TDATA[PE*IBITS-1:0], 0) : best;
		word_index = word == 0? OBITS'(0) : best_index;
		for (int unsigned p = 0; p < PE; p++) begin
			if (value(in0_V_TDATA[PE*IBITS-1:0], p) > word_best) begin
				word_best = value(in0_V_TDATA[PE*IBITS-1:0], p);
				word_index = OBITS'(word * PE + p);
			end
		end
	end

	always_ff @(posedge ap_clk) begin
		if (!ap_rst_n) begin
			word <= 0;
			ovalid <= 0;
		end
		else begin
			if (out0_V_TREADY)  ovalid <= 0;
			if (take) begin
				best <= word_best;
				best_index <= word_index;
				if (word == WORDS - 1) begin
					word <= 0;
					ovalid <= 1;
					odata <= word_index;
				end
				else  word <= word + 1;
			end
		end
	end
	assign  out0_V_TVALID = ovalid;
	assign  out0_V_TDATA = OUT_W'(odata);

endmodule : xnorflow_labelselect
