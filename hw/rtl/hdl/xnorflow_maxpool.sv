// xnorflow_maxpool: FINN's Pool layer with Function MaxPool as RTL (finn-plus has no RTL pool).
//
// Fed by a depthwise sliding-window generator whose SIMD equals PE: per output pixel, for each
// of the CHANNELS / PE channel folds, KK = kernel rows x columns consecutive words of PE
// channels (element 0 in the least significant bits, IBITS each, two's complement if ISIGNED).
// Each output word holds the largest value of each lane over those KK words; on 1-bit maps
// (BINARY) that is the OR of the window. KK cycles per output word.

module xnorflow_maxpool #(
	int unsigned  PE = 1,
	int unsigned  KK = 4,
	int unsigned  IBITS = 1,
	bit           ISIGNED = 0
)(
	input	logic  ap_clk,
	input	logic  ap_rst_n,

	output	logic  in0_V_TREADY,
	input	logic  in0_V_TVALID,
	input	logic [((PE*IBITS+7)/8)*8-1:0]  in0_V_TDATA,

	input	logic  out0_V_TREADY,
	output	logic  out0_V_TVALID,
	output	logic [((PE*IBITS+7)/8)*8-1:0]  out0_V_TDATA
);
	localparam int unsigned  KBITS = KK > 1? $clog2(KK) : 1;
	localparam int unsigned  W = ((PE*IBITS+7)/8)*8;

	logic [KBITS-1:0]  k;
	logic signed [IBITS:0]  best [PE];   // one bit more: unsigned values compare as signed
	logic  ovalid;
	logic [W-1:0]  odata;

	// the last word of a window waits while the previous result has not been taken
	assign  in0_V_TREADY = !(k == KK - 1 && ovalid && !out0_V_TREADY);
	wire  take = in0_V_TVALID && in0_V_TREADY;

	function automatic logic signed [IBITS:0] lane(input logic [PE*IBITS-1:0] w, input int unsigned p);
		return  ISIGNED? {w[p*IBITS+IBITS-1], w[p*IBITS +: IBITS]} : {1'b0, w[p*IBITS +: IBITS]};
	endfunction

	logic signed [IBITS:0]  next [PE];
	always_comb begin
		for (int unsigned p = 0; p < PE; p++) begin
			next[p] = lane(in0_V_TDATA[PE*IBITS-1:0], p);
			if (k != 0 && best[p] > next[p])  next[p] = best[p];
		end
	end

	always_ff @(posedge ap_clk) begin
		if (!ap_rst_n) begin
			k <= 0;
			ovalid <= 0;
		end
		else begin
			if (out0_V_TREADY)  ovalid <= 0;
			if (take) begin
				for (int unsigned p = 0; p < PE; p++)  best[p] <= next[p];
				if (k == KK - 1) begin
					k <= 0;
					ovalid <= 1;
					odata <= '0;
					for (int unsigned p = 0; p < PE; p++)  odata[p*IBITS +: IBITS] <= next[p][IBITS-1:0];
				end
				else  k <= k + 1;
			end
		end
	end
	assign  out0_V_TVALID = ovalid;
	assign  out0_V_TDATA = odata;

endmodule : xnorflow_maxpool
