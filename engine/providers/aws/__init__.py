"""AWS IoT Core provider."""
