"""Local emulators for the demo and the tests: moto's server for AWS, fleetctl's own Azure emulators."""
