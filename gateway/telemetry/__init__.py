"""What the gateway tells its operators: metrics, log records and traces."""
