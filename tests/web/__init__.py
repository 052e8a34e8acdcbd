"""The web portal: pages and API through the test client, and a real browser."""
