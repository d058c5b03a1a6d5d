# Two commands do all the set-up on a fresh machine:
#   make demo   - create .venv, install gateport with every runtime, convert a bundled model and verify it
#   make test   - the same set-up, ruff, mypy (converters/), then the whole test suite (what CI runs)
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

$(BIN)/gateport: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[all,test]'
	touch $@

setup: $(BIN)/gateport

demo: setup
	mkdir -p build
	$(BIN)/gateport inspect fixtures/models/autoencoder_bilstm.h5 --layer encoder_lstm
	$(BIN)/gateport convert fixtures/models/autoencoder_bilstm.h5 --to onnx -o build/autoencoder.onnx --force
	$(BIN)/gateport convert fixtures/models/autoencoder_bilstm.h5 --to torch -o build/autoencoder_torch --force
	$(BIN)/gateport verify fixtures/models/autoencoder_bilstm.h5 \
		--inputs fixtures/expected/autoencoder_bilstm.npz --expected fixtures/expected/autoencoder_bilstm.npz

test: setup
	$(BIN)/ruff check converters tests fixtures bench
	$(BIN)/mypy
	KERAS_BACKEND=torch $(BIN)/python -m pytest -q

.PHONY: setup demo test
