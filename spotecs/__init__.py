"""spotecs: run a web service on ECS over EC2 spot instances from one YAML file."""

__version__ = "0.1.0"
