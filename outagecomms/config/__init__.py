"""Configuration: ``model`` holds the frozen, typed objects; ``loader`` finds the TOML file,
validates it once and builds them."""
