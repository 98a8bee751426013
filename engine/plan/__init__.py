"""Plans: the closed set of actions, the pure planner, the versioned plan file and its renderers."""
