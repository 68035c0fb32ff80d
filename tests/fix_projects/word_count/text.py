def count_words(sentence):
    return len(sentence.split(" "))
