"""What the engine needs from the hardware it runs on: device rules, host waits, the heap."""
