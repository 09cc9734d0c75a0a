// xnorflow_result_queue: the output of a pipelined layer (xnorflow_mvau, xnorflow_labelselect).
//
// The layer's pipeline never stalls: it starts work whose result will enter the queue only
// against a credit (promise), one per free place, and a result leaving the queue (a pop of
// the output stream) gives its credit back. So a result always finds a place (push), and
// back-pressure reaches the layer through has_credit, a register, instead of every pipeline
// stage's enable. DEPTH places (a power of two) hold every result in flight.
//
// The output stream word is OUT_W bits, the result in its least significant WIDTH bits.

module xnorflow_result_queue #(
	int unsigned  WIDTH = 1,
	int unsigned  DEPTH = 4,
	int unsigned  OUT_W = 8
)(
	input	logic  clk,
	input	logic  rst_n,

	input	logic  promise,              // work started whose result will come: one credit used
	output	logic  has_credit,           // a credit is left (registered: credits != 0)
	input	logic  push,                 // the promised result, now
	input	logic [WIDTH-1:0]  result,

	input	logic  out_TREADY,
	output	logic  out_TVALID,
	output	logic [OUT_W-1:0]  out_TDATA
);
	localparam int unsigned  BITS = $clog2(DEPTH);

	logic [WIDTH-1:0]  queue [DEPTH];
	logic [BITS-1:0]   head, tail;
	logic [BITS:0]     held;              // results in the queue
	logic [BITS:0]     credits;           // places not yet promised
	wire  pop = out_TVALID && out_TREADY;
	wire [BITS:0]  credits_next = credits - (BITS+1)'(promise) + (BITS+1)'(pop);

	always_ff @(posedge clk) begin
		if (!rst_n) begin
			head <= 0;
			tail <= 0;
			held <= 0;
			credits <= (BITS+1)'(DEPTH);
			has_credit <= 1;
		end
		else begin
			if (push)  tail <= tail + 1;
			if (pop)  head <= head + 1;
			held <= held + (BITS+1)'(push) - (BITS+1)'(pop);
			credits <= credits_next;
			has_credit <= credits_next != 0;
		end
	end
	always_ff @(posedge clk)  if (push)  queue[tail] <= result;

	assign  out_TVALID = held != 0;
	assign  out_TDATA = OUT_W'(queue[head]);

endmodule : xnorflow_result_queue
