/// TDNSKRS: the Key Receiver Service logic (PROTOCOL §6, §9, §10, §13, §19).
public enum TDNSKRS {}
