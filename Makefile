.PHONY: test build

build:
	CGO_ENABLED=0 go build -o bin/modload ./cmd/modload

# The test command: what .ci/run runs.
test:
	bash scripts/test.sh
