# xnorflow image: training, export and the FINN flow up to HLS code generation.
# Uses the project's one install path (install.sh). The vendor tools (Vivado/Vitis HLS) for
# synthesis and bitstreams are added by the FINN build image of a later issue.
FROM python:3.11-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc g++ make \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/xnorflow
COPY . .
RUN VENV=/opt/venv bash install.sh
ENV PATH=/opt/venv/bin:$PATH
ENTRYPOINT ["xnorflow"]
CMD ["--help"]
