import streamlit as st

st.title("chat")
st.info("Coming next: this page lands with its own issue.")
