from vital_gym.envs.vital_match import VitalMatchEnv, load_env_config

__all__ = ["VitalMatchEnv", "load_env_config"]
