"""Optional integrations (web serving, an MCP server, outbound senders); the core never imports them."""
