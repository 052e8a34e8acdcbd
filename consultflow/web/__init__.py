"""The web portal: villagers submit, follow and answer; everyone reads the published account."""
