# xnorflow images; both install xnorflow with the project's one install path (install.sh).
#
#   docker build -t xnorflow .                                  training, export, FINN flow to
#                                                               HLS code and C simulation
#   docker build --target synthesis -t xnorflow-synthesis .     + Vivado/Vitis HLS from the host
#
# See README.md ("Bitstreams: the synthesis image") for the docker run line.

# ---------------------------------------------------------------------------------------------
# synthesis: FINN's Vivado steps (--until bitfile). finn-plus has no container of its own and
# supports Vivado/Vitis 2022.2 and 2024.2, which both support Ubuntu 22.04. The tools are not in
# the image (licence, ~100 GB): the host's installation is mounted at /tools/Xilinx, and
# hw/finn/vivado/entrypoint.sh checks and sources it before every command.
FROM ubuntu:22.04 AS synthesis
ENV DEBIAN_FRONTEND=noninteractive LANG=en_US.UTF-8 LC_ALL=en_US.UTF-8
# python3.11 for xnorflow; g++/make for FINN's generated code; git for FINN's dependencies; the
# rest are the libraries Vivado and Vitis HLS load on Ubuntu (libtinfo5/libncurses5 for their
# Tcl shells, X11/font libraries even in batch mode, locales for their UTF-8 handling).
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      python3.11 python3.11-venv g++ make git ca-certificates locales \
      libtinfo5 libncurses5 libx11-6 libxext6 libxrender1 libxtst6 libxi6 libfreetype6 \
      fontconfig libglib2.0-0 libsm6 unzip zip \
 && locale-gen en_US.UTF-8 \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/xnorflow
COPY . .
RUN PYTHON=python3.11 VENV=/opt/venv bash install.sh
ENV PATH=/opt/venv/bin:$PATH FINN_DEPS=/opt/finn_deps XILINX_ROOT=/tools/Xilinx
# finn-plus' dependencies (finn-hlslib, board files) at their pinned commits, fetched now:
# `finn deps update` would stop here on the missing Vivado before fetching anything.
RUN python -m xnorflow.hw.finn.deps "$FINN_DEPS" && chmod -R a+rX "$FINN_DEPS"
ENTRYPOINT ["/opt/xnorflow/hw/finn/vivado/entrypoint.sh"]
CMD ["xnorflow", "--help"]

# ---------------------------------------------------------------------------------------------
# default: everything that runs without the vendor tools.
FROM python:3.11-slim AS xnorflow
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc g++ make \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/xnorflow
COPY . .
RUN VENV=/opt/venv bash install.sh
ENV PATH=/opt/venv/bin:$PATH
ENTRYPOINT ["xnorflow"]
CMD ["--help"]
